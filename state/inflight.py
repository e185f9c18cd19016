"""The in-flight registry: which envelope holds each operation key while it is queued, scheduled or sent.

One piece of work is in flight once. `claim` registers an envelope's operation keys before it is published:
a key already held by another live envelope is refused (that envelope will deliver it), unless the new
operation carries a newer version - then the newer one takes the key, and the older envelope drops the
operation when it runs (`holders` tells it). The engine `touch`es its keys when it reschedules (so a long
backoff or a parked endpoint does not look abandoned) and `release`s them once the work is done, refused or
dead-lettered. A holder not heard of for `stale_after` seconds is presumed lost and its keys may be claimed
again: that risks a duplicate attempt (the ledger makes it harmless), never a lost operation.

Hash `<prefix>:inflight:ops`: operation key -> {"env": envelope id, "version": str, "at": epoch seconds}.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from state.keys import RedisKeys

# KEYS[1] the hash; ARGV: now, stale_after, the time to record, then (key, envelope id, version) triples.
# Returns the accepted keys.
_CLAIM = """
local now = tonumber(ARGV[1])
local stale = tonumber(ARGV[2])
local claimed_at = tonumber(ARGV[3])
local accepted = {}
for i = 4, #ARGV, 3 do
  local key, env, version = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local raw = redis.call('HGET', KEYS[1], key)
  local take = true
  if raw then
    local cur = cjson.decode(raw)
    if cur['env'] ~= env and tonumber(cur['at']) >= now - stale and (cur['version'] or '') >= version then
      take = false
    end
  end
  if take then
    redis.call('HSET', KEYS[1], key, cjson.encode({env = env, version = version, at = claimed_at}))
    table.insert(accepted, key)
  end
end
return accepted
"""

# ARGV: envelope id, then keys: delete each key still held by that envelope.
_RELEASE = """
local n = 0
for i = 2, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw and cjson.decode(raw)['env'] == ARGV[1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
"""

# ARGV: from envelope id, to envelope id, time, then keys: each key `from` still holds is now `to`'s, as of that
# time (from == to: the holder's time is refreshed).
_TRANSFER = """
for i = 4, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local cur = cjson.decode(raw)
    if cur['env'] == ARGV[1] then
      cur['env'] = ARGV[2]
      cur['at'] = tonumber(ARGV[3])
      redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(cur))
    end
  end
end
return 1
"""


PUBLISH_GRACE = 20.0  # seconds a claim stays good before the envelope is confirmed on the broker


@dataclass(frozen=True)
class Holder:
    envelope: str
    version: str
    at: float


class InFlight:
    def __init__(self, client: redis.Redis, key_prefix: str, stale_after: float = 3600.0) -> None:
        self.client = client
        self.key = RedisKeys(key_prefix).inflight_operations
        self.stale_after = stale_after
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._transfer = client.register_script(_TRANSFER)

    def claim(self, envelope_id: str, keys: Iterable[tuple[str, str | None]], now: float | None = None) -> set[str]:
        """Register `(operation key, version)` pairs for one envelope; returns the keys it may carry.

        A claim is provisional: it goes stale after `PUBLISH_GRACE` seconds unless `confirm`ed once the
        envelope is on the broker, so a process that dies between claiming and publishing blocks nobody for long."""
        return self.claim_many([(envelope_id, list(keys))], now)[0]

    def claim_many(
        self, envelopes: list[tuple[str, list[tuple[str, str | None]]]], now: float | None = None,
    ) -> list[set[str]]:
        """`claim` for many envelopes in one round trip (a poll's or a flush's submission)."""
        now = now or time.time()
        head: list[str | float] = [now, self.stale_after, now - self.stale_after + PUBLISH_GRACE]
        pipe = self.client.pipeline(transaction=False)
        for envelope_id, keys in envelopes:
            args = list(head)
            for key, version in keys:
                args.extend((key, envelope_id, version or ""))
            self._claim(keys=[self.key], args=args, client=pipe)
        return [set(accepted or []) for accepted in pipe.execute()] if envelopes else []

    def release(self, envelope_id: str, keys: Iterable[str], client: redis.client.Pipeline | None = None) -> int:
        """Free the keys the envelope still holds (inside `client`'s pipeline if given: returns 0 then)."""
        keys = list(keys)
        if not keys:
            return 0
        if client is not None:
            # EVAL inside a pipeline: a registered script there costs redis-py a SCRIPT EXISTS round trip first
            client.eval(_RELEASE, 1, self.key, envelope_id, *keys)
            return 0
        return int(self._release(keys=[self.key], args=[envelope_id, *keys]))

    def touch(self, envelope_id: str, keys: Iterable[str], at: float) -> None:
        """Mark the keys as still held until `at` (a rescheduled envelope's due time)."""
        self.transfer(envelope_id, envelope_id, keys, at)

    def transfer(self, from_envelope: str, to_envelope: str, keys: Iterable[str], at: float) -> None:
        """Part of an envelope's work continues in another envelope (it waits while the rest is sent)."""
        keys = list(keys)
        if keys:
            self._transfer(keys=[self.key], args=[from_envelope, to_envelope, at, *keys])

    def confirm(self, envelopes: Iterable[tuple[str, list[str]]], now: float | None = None) -> None:
        """The envelopes `(id, keys)` are on the broker: their claims hold for the full `stale_after`."""
        now = now or time.time()
        pipe = self.client.pipeline(transaction=False)
        for envelope_id, keys in envelopes:
            if keys:
                self._transfer(keys=[self.key], args=[envelope_id, envelope_id, now, *keys], client=pipe)
        pipe.execute()

    def holders(self, keys: list[str]) -> dict[str, Holder]:
        if not keys:
            return {}
        return self.parse_holders(keys, self.client.hmget(self.key, keys))

    def queue_holders(self, pipe: Any, keys: list[str]) -> None:
        """`holders` as one command of the caller's pipeline (its answer goes to `parse_holders`)."""
        pipe.hmget(self.key, keys)

    @staticmethod
    def parse_holders(keys: list[str], raws: list[Any]) -> dict[str, Holder]:
        out: dict[str, Holder] = {}
        for key, raw in zip(keys, raws, strict=True):
            if raw:
                data = json.loads(raw)
                out[key] = Holder(envelope=str(data["env"]), version=str(data.get("version") or ""),
                                  at=float(data["at"]))
        return out

    def count(self) -> int:
        return int(self.client.hlen(self.key))
