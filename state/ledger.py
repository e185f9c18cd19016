"""The delivery ledger: what reached Klaviyo, when, with which response.

One key per delivered operation (``<prefix>:ledger:<operation key>``), expiring after the retention, and a
per-record index (``<prefix>:ledger-index:<record>``) so `bcsync audit` can show an order's whole trail.
The domain computes "what still needs sending" as desired state minus this ledger.
"""

from __future__ import annotations

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
        self._set_if_not_older = client.register_script(_SET_IF_NOT_OLDER)

    def record(self, entries: list[LedgerEntry]) -> None:
        if not entries:
            return
        pipe = self.client.pipeline(transaction=False)
        for entry in entries:
            # newest wins: a slow write of an older version (a subscribe that crossed a newer unsubscribe, a
            # bulk job that completed late) never replaces the record of a newer one
            self._set_if_not_older(
                keys=[self.prefix + entry.key], args=[entry.model_dump_json(), entry.version or "", self.ttl],
                client=pipe,
            )
            if entry.record:
                pipe.sadd(self.index_prefix + entry.record, entry.key)
                pipe.expire(self.index_prefix + entry.record, self.ttl)
        pipe.execute()

    def get(self, key: str) -> LedgerEntry | None:
        raw = self.client.get(self.prefix + key)
        return LedgerEntry.model_validate_json(raw) if raw else None

    def delivered(self, keys: list[str]) -> dict[str, LedgerEntry]:
        if not keys:
            return {}
        raws = self.client.mget([self.prefix + k for k in keys])
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


_SET_IF_NOT_OLDER = """
local held = redis.call('GET', KEYS[1])
if held and ARGV[2] ~= '' then
  local ok, old = pcall(cjson.decode, held)
  if ok and type(old['version']) == 'string' and old['version'] > ARGV[2] then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return 1
"""


