"""`bcsync metrics`: a Prometheus endpoint for the whole fleet, read from Redis at each scrape.

Every worker already keeps its statistics in Redis (state/lane_stats.py, state/throttles.py, dead letters, the
exception register, watermarks, the poller's health, the limiter's windows), so one metrics process reports the
fleet, however many hosts and pool processes deliver: a custom collector (`FleetCollector`) reads them when
Prometheus scrapes, and nothing is counted in the metrics process itself. Counters are since the fleet's Redis
was new (a counter that drops means Redis lost its data, which Prometheus' `rate()` tolerates).

It listens on loopback unless told otherwise (`--address`, BCSYNC_METRICS_ADDRESS): the figures name endpoints,
lanes and exception types, never a customer, but they are nobody else's business.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from config.lanes import LANES
from config.settings import get_settings
from delivery.freshness import CHECKS, budget_use, limiter_of, readings
from state.factory import Stores, stores
from state.lane_stats import DEAD_LETTERED, LaneStats
from state.throttles import ThrottleCounts
from sync.reconcile.differences import TYPES as RECONCILE_TYPES

log = logging.getLogger("bcsync.metrics")


def is_reconcile_type(name: str) -> bool:
    """A type of reconciliation's differences (`bcsync reconcile`: each difference is an open exception of its
    type); the family is exposed, with no sample, before any reconciliation found one."""
    return name in RECONCILE_TYPES


class FleetCollector(Collector):
    """Every fleet metric, read from Redis at scrape time."""

    def __init__(self, state: Stores | None = None) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("bcsync_redis_up", "1 when the fleet's Redis answered this scrape, else 0.")
        try:
            families = list(self._families(self._state or stores(), time.time()))
        except Exception:  # noqa: BLE001  a scrape must answer: Redis away is itself the news
            log.warning("could not read the fleet's statistics from Redis", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, st: Stores, now: float) -> Iterator[Metric]:
        s = st.settings
        stats = st.lane_stats

        yield from _delivery_outcomes(stats)

        rows = CounterMetricFamily("bcsync_delivered_rows", "Rows Klaviyo accepted, by lane.", labels=["lane"])
        for lane, summary in stats.summary(LANES).items():
            rows.add_metric([lane], float(summary["delivered"] or 0))
        yield rows

        latency = HistogramMetricFamily(
            "bcsync_delivery_latency_seconds", "Time from an envelope's creation to Klaviyo's answer, by lane.",
            labels=["lane"])
        for lane in LANES:
            buckets, total = stats.histogram(lane)
            latency.add_metric([lane], buckets, total)
        yield latency

        keys = st.keys
        pipe = st.redis.pipeline(transaction=False)
        for lane in LANES:
            pipe.llen(keys.queue(lane))
            pipe.llen(keys.queue_taking(lane))
        lengths = pipe.execute()
        depth = GaugeMetricFamily("bcsync_queue_depth", "Messages waiting on each lane (its taking list included).",
                                  labels=["lane"])
        for i, lane in enumerate(LANES):
            depth.add_metric([lane], int(lengths[2 * i]) + int(lengths[2 * i + 1]))
        yield depth

        delayed = GaugeMetricFamily("bcsync_delayed_entries", "Entries of the delayed-retry schedule: waiting for "
                                    "their due time (due) or being published by a drainer (claimed).",
                                    labels=["state"])
        for state, count in st.delayed.counts().items():
            delayed.add_metric([state], count)
        yield delayed

        dead = GaugeMetricFamily("bcsync_dead_letters", "Dead letters kept, by lane.", labels=["lane"])
        for lane in LANES:
            dead.add_metric([lane], st.dead_letters.count(lane))
        yield dead

        open_by: dict[tuple[str, str], int] = {}
        for rec in st.exceptions.list(limit=10**9):
            open_by[(rec.type, rec.owner)] = open_by.get((rec.type, rec.owner), 0) + 1
        exceptions = GaugeMetricFamily("bcsync_exceptions_open", "Open exceptions, by type and owner team.",
                                       labels=["type", "owner"])
        differences = GaugeMetricFamily(
            "bcsync_reconcile_differences", "Differences the last reconciliations found and nobody resolved yet "
            "(open exceptions of reconciliation's types), by type.", labels=["type"])
        for (kind, owner), count in sorted(open_by.items()):
            exceptions.add_metric([kind, owner], count)
        for kind in sorted({k for k, _ in open_by if is_reconcile_type(k)}):
            differences.add_metric([kind], sum(c for (k, _), c in open_by.items() if k == kind))
        yield exceptions
        yield differences

        limiter = limiter_of(st)
        usage = budget_use(limiter)
        fresh = readings(st, now, limiter, usage)
        yield from _freshness_families(fresh)

        throttled = CounterMetricFamily("bcsync_klaviyo_throttled", "Klaviyo's 429 answers, by endpoint.",
                                        labels=["endpoint"])
        for endpoint, count in sorted(ThrottleCounts(st.redis, s.key_prefix).totals().items()):
            throttled.add_metric([endpoint], count)
        yield throttled
        yield from _limiter_families(usage)


def _freshness_families(fresh: list[Any]) -> Iterator[Metric]:
    names = {
        "watermark_age": ("bcsync_watermark_age_seconds", "Age of each resource's watermark (the newest Blue Cherry "
                          "change handed on).", "resource"),
        "read_age": ("bcsync_poller_last_read_age_seconds", "Time since the poller's last successful read of each "
                     "resource.", "resource"),
        "queue_age": ("bcsync_queue_oldest_age_seconds", "Age of the oldest message waiting on each lane.", "lane"),
        "delayed_overdue": ("bcsync_delayed_overdue_seconds", "How far past its due time each lane's most overdue "
                            "delayed retry is.", "lane"),
        "throttles": ("bcsync_klaviyo_throttled_recent", "Klaviyo's 429s in the freshness window "
                      "(BCSYNC_KLAVIYO_429_WINDOW_SECONDS), by endpoint.", "endpoint"),
        "budget_use": ("bcsync_limiter_budget_use_ratio", "Part of the fleet's share of Klaviyo's steady limit used "
                       "this minute, by endpoint.", "endpoint"),
    }
    over = GaugeMetricFamily("bcsync_freshness_over", "1 where a freshness value is over its threshold (a "
                             "crossing: an exception of the check's type).", labels=["check", "subject", "type"])
    thresholds = GaugeMetricFamily("bcsync_freshness_threshold", "Each freshness check's threshold (0: off).",
                                   labels=["check", "subject"])
    for check, (name, doc, label) in names.items():
        family = GaugeMetricFamily(name, doc, labels=[label])
        for reading in fresh:
            if reading.check != check:
                continue
            thresholds.add_metric([check, reading.subject], reading.threshold)
            over.add_metric([check, reading.subject, CHECKS[check][0]], 1 if reading.over else 0)
            if reading.value is not None:
                family.add_metric([reading.subject], reading.value)
        yield family
    yield over
    yield thresholds


def _limiter_families(usage: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    used = GaugeMetricFamily("bcsync_limiter_requests", "Requests the fleet took in the current limiter window, "
                             "by endpoint, window (burst: second, steady: minute) and lane group (total, non_fast, "
                             "batch).", labels=["endpoint", "window", "lanes"])
    caps = GaugeMetricFamily("bcsync_limiter_cap", "What the fleet may take per window at its current share, "
                             "with the whole fast reserve held.", labels=["endpoint", "window", "lanes"])
    share = GaugeMetricFamily("bcsync_limiter_share", "The fleet's adaptive share of each endpoint's Klaviyo "
                              "limits.", labels=["endpoint"])
    for endpoint, u in sorted(usage.items()):
        for window in ("burst", "steady"):
            w = u[window]
            for lanes, taken in (("total", w["used"]), ("non_fast", w["non_fast"]), ("batch", w["batch"])):
                used.add_metric([endpoint, window, lanes], taken)
                caps.add_metric([endpoint, window, lanes], w["caps"][lanes])
        share.add_metric([endpoint], u["share"])
    yield used
    yield caps
    yield share


def registry(state: Stores | None = None) -> CollectorRegistry:
    """A registry holding only the fleet's collector (not the metrics process's own)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(FleetCollector(state))
    return reg


def serve(address: str, port: int, stop: threading.Event | None = None) -> None:
    """Serve /metrics on address:port until SIGTERM/SIGINT (or `stop`)."""
    stop = stop or threading.Event()
    server, thread = start_http_server(port, addr=address, registry=registry())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"bcsync metrics: serving the fleet's metrics on http://{address}:{port}/metrics", flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
        thread.join(timeout=5)


def metrics_address(address: str | None, port: int | None) -> tuple[str, int]:
    s = get_settings()
    return address or s.metrics_address, port or s.metrics_port


def _delivery_outcomes(stats: LaneStats) -> list[Metric]:
    """Each attempt's outcome, and the dead-lettered operations apart (`state.lane_stats` keeps both)."""
    deliveries = CounterMetricFamily(
        "bcsync_deliveries", "Operations by lane, kind and the outcome of one delivery attempt, one outcome "
        "each (delivered, skipped: the ledger had it, refused, refused_locally, budget_wait, throttled, "
        "failed_transient, ...).", labels=["lane", "kind", "outcome"])
    # an attempt that ends in the dead-letter queue has its own outcome (refused, failed_transient after the
    # last attempt...): being dead-lettered is counted apart, so that the outcomes add up to the attempts
    dead_lettered = CounterMetricFamily(
        "bcsync_dead_lettered", "Operations put in the dead-letter queue, by lane and kind (`bcsync dlq list`).",
        labels=["lane", "kind"])
    for (lane, kind, outcome), count in sorted(stats.outcomes().items()):
        if outcome == DEAD_LETTERED:
            dead_lettered.add_metric([lane, kind], count)
        else:
            deliveries.add_metric([lane, kind, outcome], count)
    return [deliveries, dead_lettered]
