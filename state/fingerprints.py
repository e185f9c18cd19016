"""Record fingerprints in Redis: what the poller last saw of each ERP record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis

from state.keys import RedisKeys
from sync.fingerprints import StoredFingerprint


class FingerprintStore:
    """Redis hash ``<prefix>:fp:<resource>``: record key -> encoded `StoredFingerprint`.

    Redis 7.0 has no per-field expiry, so the retention (`fingerprint_ttl_days`) applies to the hash and is
    renewed on every write: a resource nobody touches for that long forgets its fingerprints (and is then
    re-sent once, which the idempotent Klaviyo keys make harmless).
    """

    def __init__(self, client: redis.Redis, key_prefix: str, ttl_days: int = 400) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)
        self.ttl = int(ttl_days * 86400)

    def key(self, resource: str) -> str:
        return self.keys.fingerprints(resource)

    def get_many(self, resource: str, keys: Sequence[str]) -> dict[str, StoredFingerprint]:
        if not keys:
            return {}
        raw = self.client.hmget(self.key(resource), list(keys))
        found: dict[str, StoredFingerprint] = {}
        for key, text in zip(keys, raw, strict=True):
            if text:
                decoded = StoredFingerprint.decode(text if isinstance(text, str) else text.decode())
                if decoded is not None:
                    found[key] = decoded
        return found

    def remember(
        self, resource: str, entries: Iterable[tuple[str, StoredFingerprint]], pipe: Any | None = None
    ) -> None:
        """Write entries (in `pipe` when given, so a caller can make it atomic with its own writes)."""
        mapping: dict[str | bytes, bytes | float | int | str] = {k: v.encode() for k, v in entries}
        if not mapping:
            return
        target = pipe if pipe is not None else self.client.pipeline(transaction=False)
        target.hset(self.key(resource), mapping=mapping)
        target.expire(self.key(resource), self.ttl)
        if pipe is None:
            target.execute()

    def forget(self, resource: str, key: str) -> None:
        self.client.hdel(self.key(resource), key)
