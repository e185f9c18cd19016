"""The one consent job in flight per customer and channel (docs/architecture.md, "Consent jobs: one in flight
per profile and channel").

Klaviyo applies subscription jobs asynchronously and says nothing but 202, so two jobs of one profile in flight
together may land in either order. A consent operation may be sent only once its key (`consent:<channel>:<code>`)
has no other job pending: `claim` takes the key before the send (atomically, for many keys in one round trip,
so two workers never both send), `mark_sent` records the 202, and the job stays pending until a read-back of
the profile shows it applied (`settle`) or its bound is reached (`drop`). A claim whose send failed stays with
its envelope while that is rescheduled (the same version claims again) and is `release`d when it is
dead-lettered or dropped.

Key `<prefix>:consent-job:<operation key>`, a JSON object:
- `state`: `claimed` (about to be sent, or rescheduled after a failed send), `sent` (202, not yet seen
  applied) or `settled` (seen applied: the memory of what the profile now holds, kept an hour for the next
  change of the key, which it does not block);
- `v` the operation's version, `action` subscribe / unsubscribe, `env` the envelope claiming it,
  `claimed` / `sent` epoch seconds, `op` the operation as sent (JSON text: resent from it);
- `prior`, `prior_seen`: the settled action and Klaviyo's `last_updated` before this job, `other`: a read-back
  saw the profile not in the job's state after it was sent (the read-back rules: `sync.customers.confirmation`).
Every entry expires by itself (a claim after `claim_ttl`, a sent job after `sent_ttl`), so a worker or a check
lost with its state never blocks a key for good.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from state.keys import RedisKeys

SETTLED_TTL_SECONDS = 3600.0

# KEYS: the job keys; ARGV: now, claim ttl ms, then (envelope id, version, action, operation json) per key.
# Per key: "ok" (claimed, or already this version's), "wait:<since>" (another version's job is pending: the
# time it was sent or claimed), "newer:<version>" (a newer version's job is pending: this one is overtaken).
_CLAIM = """
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local at = 3 + (i - 1) * 4
  local env, version, action, op = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local raw = redis.call('GET', key)
  local cur = raw and cjson.decode(raw) or nil
  if cur and cur['state'] ~= 'settled' and cur['v'] ~= version then
    if cur['v'] > version then
      out[i] = 'newer:' .. cur['v']
    else
      out[i] = 'wait:' .. tostring(cur['sent'] or cur['claimed'])
    end
  elseif cur and cur['state'] ~= 'settled' then
    cur['env'] = env
    if cur['state'] == 'claimed' then
      cur['claimed'] = now
      redis.call('SET', key, cjson.encode(cur), 'PX', ttl)
    else
      redis.call('SET', key, cjson.encode(cur), 'KEEPTTL')
    end
    out[i] = 'ok'
  else
    local entry = {state = 'claimed', v = version, action = action, env = env, claimed = now, op = op,
                   other = false}
    if cur then
      entry['prior'] = cur['action']
      entry['prior_seen'] = cur['seen']
    end
    redis.call('SET', key, cjson.encode(entry), 'PX', ttl)
    out[i] = 'ok'
  end
end
return out
"""

# KEYS: job keys; ARGV: now, sent ttl ms, then one version per key: the job of that version was accepted (202).
_MARK_SENT = """
for i, key in ipairs(KEYS) do
  local raw = redis.call('GET', key)
  if raw then
    local cur = cjson.decode(raw)
    if cur['v'] == ARGV[i + 2] and cur['state'] ~= 'settled' then
      cur['state'] = 'sent'
      cur['sent'] = tonumber(ARGV[1])
      cur['other'] = false
      redis.call('SET', key, cjson.encode(cur), 'PX', tonumber(ARGV[2]))
    end
  end
end
return 1
"""

# KEYS: job keys; ARGV[1]: the states that may be removed ("claimed" or "claimed,sent"), then one version per key.
_REMOVE = """
local n = 0
for i, key in ipairs(KEYS) do
  local raw = redis.call('GET', key)
  if raw then
    local cur = cjson.decode(raw)
    if cur['v'] == ARGV[i + 1] and string.find(',' .. ARGV[1] .. ',', ',' .. cur['state'] .. ',', 1, true) then
      redis.call('DEL', key)
      n = n + 1
    end
  end
end
return n
"""

# KEYS[1]: the job key; ARGV: version, settled json, ttl ms. The pending job of that version becomes the memory.
_SETTLE = """
local raw = redis.call('GET', KEYS[1])
local cur = raw and cjson.decode(raw) or nil
if cur and cur['v'] == ARGV[1] and cur['state'] == 'sent' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
  return 1
end
return 0
"""

# KEYS: job keys; ARGV: one version per key: a read-back saw that job's profile not (yet) in the job's state.
_SEEN_OTHER = """
for i, key in ipairs(KEYS) do
  local raw = redis.call('GET', key)
  if raw then
    local cur = cjson.decode(raw)
    if cur['v'] == ARGV[i] and cur['state'] == 'sent' and not cur['other'] then
      cur['other'] = true
      redis.call('SET', key, cjson.encode(cur), 'KEEPTTL')
    end
  end
end
return 1
"""


@dataclass(frozen=True)
class PendingJob:
    """A consent job claimed or sent and not yet seen applied."""

    key: str
    version: str
    action: str
    state: str  # claimed | sent
    envelope: str
    claimed_at: float
    sent_at: float | None
    operation: dict[str, Any]
    prior: str | None = None
    prior_seen: float | None = None
    seen_other: bool = False


@dataclass(frozen=True)
class Claims:
    """What `claim` decided, per operation key."""

    ok: set[str]
    waiting: dict[str, float]  # key -> when the job it waits for was sent (or claimed)
    overtaken: dict[str, str]  # key -> the newer version whose job is pending


class ConsentJobs:
    def __init__(self, client: redis.Redis, key_prefix: str, claim_ttl: float, sent_ttl: float) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)
        self.claim_ttl_ms = max(1, int(claim_ttl * 1000))
        self.sent_ttl_ms = max(1, int(sent_ttl * 1000))
        self._claim = client.register_script(_CLAIM)
        self._mark_sent = client.register_script(_MARK_SENT)
        self._remove = client.register_script(_REMOVE)
        self._settle = client.register_script(_SETTLE)
        self._seen_other = client.register_script(_SEEN_OTHER)

    def claim(self, envelope_id: str, operations: list[tuple[str, str, str, dict[str, Any]]],
              now: float) -> Claims:
        """Claim `(key, version, action, operation wire form)` for one envelope, in one round trip."""
        claims = Claims(ok=set(), waiting={}, overtaken={})
        if not operations:
            return claims
        args: list[Any] = [now, self.claim_ttl_ms]
        for _, version, action, op in operations:
            args.extend((envelope_id, version, action, json.dumps(op, separators=(",", ":"))))
        answers = self._claim(keys=[self.keys.consent_job(key) for key, *_ in operations], args=args)
        for (key, *_), answer in zip(operations, answers, strict=True):
            text = answer.decode() if isinstance(answer, bytes) else str(answer)
            verdict, _, value = text.partition(":")
            if verdict == "ok":
                claims.ok.add(key)
            elif verdict == "wait":
                claims.waiting[key] = float(value)
            else:
                claims.overtaken[key] = value
        return claims

    def mark_sent(self, jobs: Iterable[tuple[str, str]], now: float,
                  client: redis.client.Pipeline | None = None) -> None:
        """`(key, version)` pairs whose jobs Klaviyo accepted (inside `client`'s pipeline if given)."""
        jobs = list(jobs)
        if jobs:
            self._mark_sent(keys=[self.keys.consent_job(k) for k, _ in jobs],
                            args=[now, self.sent_ttl_ms, *(v for _, v in jobs)], client=client or self.client)

    def release(self, jobs: Iterable[tuple[str, str]]) -> int:
        """Free claims that were never sent (dead-lettered, dropped, skipped): a sent job stays pending."""
        return self._removed("claimed", jobs)

    def drop(self, jobs: Iterable[tuple[str, str]]) -> int:
        """Forget pending jobs, sent or not (their bound passed: what Klaviyo holds is not known any more)."""
        return self._removed("claimed,sent", jobs)

    def _removed(self, states: str, jobs: Iterable[tuple[str, str]]) -> int:
        jobs = list(jobs)
        if not jobs:
            return 0
        return int(self._remove(keys=[self.keys.consent_job(k) for k, _ in jobs], args=[states, *(v for _, v in jobs)]))

    def settle(self, key: str, version: str, action: str, seen: float | None, now: float) -> bool:
        """The sent job of `version` is seen applied: the key is free, and remembers what the profile holds."""
        memory = json.dumps({"state": "settled", "v": version, "action": action, "seen": seen, "at": now})
        return bool(self._settle(keys=[self.keys.consent_job(key)],
                                 args=[version, memory, int(SETTLED_TTL_SECONDS * 1000)]))

    def note_seen_other(self, jobs: Iterable[tuple[str, str]]) -> None:
        jobs = list(jobs)
        if jobs:
            self._seen_other(keys=[self.keys.consent_job(k) for k, _ in jobs], args=[v for _, v in jobs])

    def pending(self, keys: list[str]) -> dict[str, PendingJob]:
        """The pending (claimed or sent) jobs of these keys; settled memories are left out."""
        if not keys:
            return {}
        out: dict[str, PendingJob] = {}
        for key, raw in zip(keys, self.client.mget([self.keys.consent_job(k) for k in keys]), strict=True):
            if not raw:
                continue
            data = json.loads(raw)
            if data.get("state") not in ("claimed", "sent"):
                continue
            out[key] = PendingJob(
                key=key, version=str(data["v"]), action=str(data["action"]), state=str(data["state"]),
                envelope=str(data.get("env") or ""), claimed_at=float(data.get("claimed") or 0),
                sent_at=float(data["sent"]) if data.get("sent") is not None else None,
                operation=json.loads(data["op"]), prior=data.get("prior") or None,
                prior_seen=float(data["prior_seen"]) if data.get("prior_seen") is not None else None,
                seen_other=bool(data.get("other")),
            )
        return out
