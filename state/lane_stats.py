"""Per-lane delivery counters and recent latencies (message created -> Klaviyo answered), for
`bcsync status` and the demo: the fast lane should be seen ahead of the batch lane."""

from __future__ import annotations

import math
import time

import redis

from state.keys import RedisKeys

KEEP = 200  # latest latencies kept per lane


class LaneStats:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        keys = RedisKeys(key_prefix)
        self.counts = keys.delivered_counts
        self.latency_prefix = keys.latencies("")

    def delivered(self, lane: str, rows: int, created: float | None) -> None:
        if rows <= 0:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(self.counts, lane, rows)
        if created:
            pipe.lpush(self.latency_prefix + lane, round(max(0.0, time.time() - created), 3))
            pipe.ltrim(self.latency_prefix + lane, 0, KEEP - 1)
        pipe.execute()

    def summary(self, lanes: tuple[str, ...]) -> dict[str, dict[str, float | int | None]]:
        counts = self.client.hgetall(self.counts)
        out: dict[str, dict[str, float | int | None]] = {}
        for lane in lanes:
            values = sorted(float(v) for v in self.client.lrange(self.latency_prefix + lane, 0, -1))
            out[lane] = {
                "delivered": int(counts.get(lane, 0)),
                "p50_seconds": _nearest_rank(values, 0.50),
                "p95_seconds": _nearest_rank(values, 0.95),
            }
        return out


def _nearest_rank(ordered: list[float], q: float) -> float | None:
    """The nearest-rank percentile: one method for every quantile, so p50 <= p95 always holds."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)
