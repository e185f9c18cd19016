"""Per-lane delivery counters and latencies (message created -> Klaviyo answered), for `bcsync status`, the demo
and the Prometheus endpoint (workers/metrics.py): the fast lane should be seen ahead of the batch lane.

Everything lives in Redis so one metrics process reports the whole fleet: rows delivered per lane, operations per
lane, kind and outcome (delivered, skipped by the ledger, dead-lettered, waited for budget, ...), the latest
`KEEP` latencies per lane (status's percentiles) and a cumulative latency histogram per lane (`BUCKETS`)."""

from __future__ import annotations

import math
import time
from typing import Any

import redis

from state.keys import RedisKeys

KEEP = 200  # latest latencies kept per lane
DEAD_LETTERED = "dead_lettered"  # kept with the attempts' outcomes (counts from before the split carry over)
# upper bounds (seconds) of the latency histogram: sub-second for the fast lane, up to an hour for the batch lane
BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


# The counters of one delivery in one command (inside the delivery's pipeline: seven commands fewer to pack, send
# and parse a message, issue 18). KEYS: counts, latencies, histogram, outcomes. ARGV: lane, rows, latency ('' if
# none), the newest index kept, the latency's bucket, the outcome field ('' if none).
_DELIVERED = """
redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('LPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], 0, ARGV[4])
  redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
  redis.call('HINCRBYFLOAT', KEYS[3], 'sum', ARGV[3])
  redis.call('HINCRBY', KEYS[3], 'count', 1)
end
if ARGV[6] ~= '' then
  redis.call('HINCRBY', KEYS[4], ARGV[6], ARGV[2])
end
"""


class LaneStats:
    def __init__(self, client: redis.Redis, key_prefix: str, keep: int = KEEP) -> None:
        self.keep = keep
        self.client = client
        keys = RedisKeys(key_prefix)
        self.keys = keys
        self.counts = keys.delivered_counts
        self.latency_prefix = keys.latencies("")
        self.outcomes_key = keys.delivery_outcomes

    def delivered(self, lane: str, rows: int, created: float | None, client: Any = None,
                  kind: str | None = None) -> None:
        """Count `rows` delivered on `lane`, the latency of their message and, with `kind`, the rows' outcome
        "delivered" (`outcome`'s count), in one command (inside `client`'s pipeline if given: the caller's round
        trip). EVAL, as the ledger's write: no SCRIPT EXISTS round trip in a pipeline."""
        if rows <= 0:
            return
        latency, bucket = "", ""
        if created:
            seconds = round(max(0.0, time.time() - created), 3)
            latency = repr(seconds)
            # per bucket; the scrape makes them cumulative
            bucket = _bound(next((b for b in BUCKETS if seconds <= b), math.inf))
        outcome = f"{lane}|{kind}|delivered" if kind is not None else ""
        (client or self.client).eval(
            _DELIVERED, 4, self.counts, self.latency_prefix + lane, self.keys.latency_histogram(lane),
            self.outcomes_key, lane, rows, latency, self.keep - 1, bucket, outcome)

    def outcome(self, lane: str, kind: str, outcome: str, operations: int, client: Any = None) -> None:
        """Count `operations` of `kind` on `lane` that ended one attempt as `outcome`."""
        if operations > 0:
            (client or self.client).hincrby(self.outcomes_key, f"{lane}|{kind}|{outcome}", operations)

    def dead_lettered(self, lane: str, kind: str, operations: int) -> None:
        """Count `operations` put in the dead-letter queue (apart from their attempt's outcome: the metrics show
        it as its own family)."""
        self.outcome(lane, kind, DEAD_LETTERED, operations)

    def outcomes(self) -> dict[tuple[str, str, str], int]:
        """(lane, kind, outcome) -> operations, since the fleet's Redis was new."""
        out: dict[tuple[str, str, str], int] = {}
        for field, value in self.client.hgetall(self.outcomes_key).items():
            parts = str(field).split("|")
            if len(parts) == 3:
                out[(parts[0], parts[1], parts[2])] = int(value)
        return out

    def histogram(self, lane: str) -> tuple[list[tuple[str, float]], float]:
        """The lane's cumulative latency buckets [(upper bound, count)...,("+Inf", count)] and sum of seconds."""
        raw = self.client.hgetall(self.keys.latency_histogram(lane))
        running = 0.0
        buckets: list[tuple[str, float]] = []
        for bound in (*BUCKETS, math.inf):
            running += float(raw.get(_bound(bound), 0))
            buckets.append((_bound(bound), running))
        return buckets, float(raw.get("sum", 0.0))

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


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def _nearest_rank(ordered: list[float], q: float) -> float | None:
    """The nearest-rank percentile: one method for every quantile, so p50 <= p95 always holds."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)
