"""Klaviyo's 429s per endpoint, counted where every process sees them: for the freshness check (too many in a
window: `klaviyo_throttled`) and the Prometheus endpoint (a counter per endpoint).

Hash ``<prefix>:stats:throttled`` (endpoint -> 429s ever) and one hash per epoch minute
``<prefix>:stats:throttled:<minute>`` (endpoint -> 429s in it; expires after a day), written by the Klaviyo
client of every worker (delivery/runtime.py hands it `ThrottleCounts.record`)."""

from __future__ import annotations

import time

import redis

from state.keys import RedisKeys

MINUTE_TTL_SECONDS = 86_400


class ThrottleCounts:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)

    def record(self, endpoint: str, now: float | None = None) -> None:
        """One 429 from `endpoint`."""
        minute = self.keys.throttled_minute(int((time.time() if now is None else now) // 60))
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(self.keys.throttled_counts, endpoint, 1)
        pipe.hincrby(minute, endpoint, 1)
        pipe.expire(minute, MINUTE_TTL_SECONDS)
        pipe.execute()

    def totals(self) -> dict[str, int]:
        """Endpoint -> 429s since the fleet's Redis was new."""
        return {str(k): int(v) for k, v in self.client.hgetall(self.keys.throttled_counts).items()}

    def recent(self, window_seconds: int, now: float | None = None) -> dict[str, int]:
        """Endpoint -> 429s in the last `window_seconds` (whole minutes, the current one included)."""
        current = int((time.time() if now is None else now) // 60)
        minutes = max(1, window_seconds // 60)
        pipe = self.client.pipeline(transaction=False)
        for minute in range(current - minutes + 1, current + 1):
            pipe.hgetall(self.keys.throttled_minute(minute))
        out: dict[str, int] = {}
        for counts in pipe.execute():
            for endpoint, value in counts.items():
                out[str(endpoint)] = out.get(str(endpoint), 0) + int(value)
        return out
