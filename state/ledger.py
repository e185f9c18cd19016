"""The delivery ledger: what reached Klaviyo, when, with which response.

One key per delivered operation (``<prefix>:ledger:<operation key>``), expiring after the retention, and a
per-record index (``<prefix>:ledger-index:<record>``) so `bcsync audit` can show an order's whole trail.
The domain computes "what still needs sending" as desired state minus this ledger.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis

from state.keys import RedisKeys
from sync.ledger import LedgerEntry


class Ledger:
    def __init__(self, client: redis.Redis, key_prefix: str, ttl_days: int = 400) -> None:
        self.client = client
        keys = RedisKeys(key_prefix)
        self.prefix = keys.ledger("")
        self.index_prefix = keys.ledger_index("")
        self.ttl = int(ttl_days * 86400)

    def record(self, entries: list[LedgerEntry], client: redis.client.Pipeline | None = None) -> None:
        """Write the entries in one command: one round trip per request however many rows it delivered, or
        none of its own inside `client`'s pipeline (the caller's round trip; its result is the count written).

        Newest wins: a slow write of an older version (a subscribe that crossed a newer unsubscribe, a bulk job
        that completed late) never replaces the record of a newer one. EVAL, not EVALSHA: the script text is
        small next to a request's entries, and a pipeline then never needs the SCRIPT EXISTS round trip
        redis-py makes for a registered script (nor can a flushed script cache fail the write)."""
        if not entries:
            return
        # the entries travel as one argument, one JSON document a line (pydantic escapes a newline inside a
        # string): redis-py encodes arguments one by one in Python, which cost more than the write for a bulk
        # request's 1,000 keys, indexes and entries. The script finds each key in its entry.
        lines = "\n".join(entry.model_dump_json() for entry in entries)
        (client or self.client).eval(_RECORD, 0, self.prefix, self.index_prefix, self.ttl, lines)

    def get(self, key: str) -> LedgerEntry | None:
        raw = self.client.get(self.prefix + key)
        return LedgerEntry.model_validate_json(raw) if raw else None

    def delivered(self, keys: list[str]) -> dict[str, LedgerEntry]:
        if not keys:
            return {}
        return self.parse_delivered(keys, self.client.mget([self.prefix + k for k in keys]))

    def delivered_versions(self, keys: list[str]) -> dict[str, str | None]:
        """The version delivered of each key the ledger holds (one round trip; what stock's newest-wins checks
        read for a job's 100 rows, without building an entry of each)."""
        if not keys:
            return {}
        raws = self.client.mget([self.prefix + k for k in keys])
        return {k: orjson.loads(r).get("version") for k, r in zip(keys, raws, strict=True) if r}

    def queue_delivered(self, pipe: Any, keys: list[str]) -> None:
        """`delivered` as one command of the caller's pipeline (its answer goes to `parse_delivered`)."""
        pipe.mget([self.prefix + k for k in keys])

    @staticmethod
    def parse_delivered(keys: list[str], raws: list[Any]) -> dict[str, LedgerEntry]:
        return {k: LedgerEntry.model_validate_json(r) for k, r in zip(keys, raws, strict=True) if r}

    def for_record(self, record: str) -> list[LedgerEntry]:
        keys = sorted(self.client.smembers(self.index_prefix + record))
        found = self.delivered(keys)
        return sorted(found.values(), key=lambda e: e.delivered_at)

    def forget_record(self, record: str) -> int:
        """Erasure: drop the fleet's own trail of a record."""
        keys = list(self.client.smembers(self.index_prefix + record))
        if keys:
            self.client.delete(*[self.prefix + k for k in keys])
        self.client.delete(self.index_prefix + record)
        return len(keys)


# ARGV: the ledger's key prefix, the index's key prefix, ttl, the entries' JSON one a line. The keys are the
# prefixes and each entry's own key and record (one Redis, never a cluster: the fleet's scripts may name keys).
_RECORD = """
local prefix, index_prefix, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local written = 0
for line in string.gmatch(ARGV[4], '[^\\n]+') do
  local entry = cjson.decode(line)
  local key = prefix .. entry['key']
  local version = entry['version']
  local older = false
  if type(version) == 'string' and version ~= '' then
    local held = redis.call('GET', key)
    if held then
      local ok, old = pcall(cjson.decode, held)
      older = ok and type(old['version']) == 'string' and old['version'] > version
    end
  end
  if not older then
    redis.call('SET', key, line, 'EX', ttl)
    written = written + 1
  end
  local record = entry['record']
  if type(record) == 'string' and record ~= '' then
    redis.call('SADD', index_prefix .. record, entry['key'])
    redis.call('EXPIRE', index_prefix .. record, ttl)
  end
end
return written
"""
