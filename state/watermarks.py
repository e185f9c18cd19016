"""Watermarks in Redis: per resource, the newest ERP change already handed on."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from state.keys import RedisKeys


class WatermarkStore:
    """Redis hash ``<prefix>:watermarks``: resource -> UTC ISO instant of the newest `last_mod` handed on."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.key = RedisKeys(key_prefix).watermarks

    def get(self, resource: str) -> datetime | None:
        raw = self.client.hget(self.key, resource)
        if not raw:
            return None
        return datetime.fromisoformat(raw if isinstance(raw, str) else raw.decode())

    def set(self, resource: str, instant: datetime) -> None:
        self.client.hset(self.key, resource, instant.astimezone(UTC).isoformat())

    def advance(self, resource: str, instant: datetime) -> datetime:
        """Move forward only (a re-read never pulls the watermark back); returns the stored value."""
        current = self.get(resource)
        if current is None or instant > current:
            self.set(resource, instant)
            return instant
        return current

    def all(self) -> dict[str, datetime]:
        return {k: datetime.fromisoformat(v) for k, v in self.client.hgetall(self.key).items()}

    def reset(self, resource: str | None = None) -> None:
        if resource is None:
            self.client.delete(self.key)
        else:
            self.client.hdel(self.key, resource)
