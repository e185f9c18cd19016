"""Waiting without hoarding: with an endpoint paused fleet-wide for a long time, a worker moves its queued
messages into the Redis delayed-retry schedule and acknowledges them - never holding them as Celery ETA
messages in memory - and a throttle longer than the park cap parks the endpoint and raises an operator
exception instead of spinning. Real Redis, the Klaviyo sandbox's long-throttle fault, a real worker."""

from __future__ import annotations

import json
import time

import psutil
import pytest

from config.mapping import ExceptionOwners
from connectors.klaviyo.limiter import FleetRateLimiter
from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig
from state.delayed import DelayedSchedule
from state.exceptions import ExceptionRegister
from tests.integration.delivery.test_fleet_delivery import PROFILE_IMPORT, Fleet, fleet_factory, profile_op  # noqa: F401
from tests.support.fleet import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

LANE = "fast"
PREFETCH, CONCURRENCY = 1, 1  # config/celery.py worker_prefetch_multiplier; the worker below
RSS_GROWTH_BOUND = 60 * 1024 * 1024


def long_throttle(seconds: int) -> KlaviyoSandboxConfig:
    """Every profile-import answers 429 with a Retry-After of `seconds` (counted from the first request)."""
    return KlaviyoSandboxConfig(rate_limits_enabled=False, faults=FaultSettings(
        long_throttle_endpoint=PROFILE_IMPORT, long_throttle_seconds=seconds))


def unacked_on(fleet: Fleet, lane: str) -> int:
    """Messages of `lane` delivered to a worker and not yet acknowledged (kombu's unacked hash)."""
    values = fleet.redis.hvals(f"{fleet.prefix}:broker:unacked")
    return sum(1 for raw in values if json.loads(raw)[2] == lane)


def worker_rss(worker: WorkerProcess) -> int:
    main = psutil.Process(worker.pid)
    return sum(p.memory_info().rss for p in [main, *main.children(recursive=True)])


def queued(fleet: Fleet, lane: str) -> int:
    return int(fleet.redis.llen(f"{fleet.prefix}:broker:{lane}"))


def test_a_long_retry_after_moves_the_backlog_into_the_delayed_schedule_without_hoarding(fleet_factory):  # noqa: F811
    fleet = fleet_factory(long_throttle(120), BCSYNC_THROTTLE_PARK_SECONDS="600")
    total = 2000
    fleet.submit([profile_op(n) for n in range(total)])  # one message per upsert on the fast lane
    assert queued(fleet, LANE) == total
    schedule = DelayedSchedule(fleet.redis, fleet.prefix)
    started = time.time()
    worker = fleet.worker(LANE, concurrency=CONCURRENCY)
    rss_at_start = worker_rss(worker)
    samples = {"unacked": 0, "rss": rss_at_start, "count": 0}

    def moved() -> bool:
        samples["unacked"] = max(samples["unacked"], unacked_on(fleet, LANE))
        samples["rss"] = max(samples["rss"], worker_rss(worker))
        samples["count"] += 1
        return schedule.pending() == total and queued(fleet, LANE) == 0 and unacked_on(fleet, LANE) == 0

    wait_for(moved, 80, interval=0.05, message=f"{total} messages moved into the delayed schedule")
    print(f"moved {total} in {time.time() - started:.1f}s; max unacked {samples['unacked']}; "
          f"RSS {rss_at_start / 2**20:.1f} -> max {samples['rss'] / 2**20:.1f} MiB; {samples['count']} samples")

    assert samples["count"] > 20, "too few samples to say anything about the unacked hash"
    # the worker held at most what prefetch allows, never a backlog of ETA messages
    assert samples["unacked"] <= PREFETCH * CONCURRENCY
    assert samples["rss"] - rss_at_start < RSS_GROWTH_BOUND
    # every message waits in Redis for the end of Klaviyo's Retry-After, acknowledged: none due before it
    first_due = schedule.next_due()
    assert first_due is not None and first_due >= started + 100
    # the endpoint was paused fleet-wide by the first 429: Klaviyo saw one request, not 2,000
    stats = fleet.stats()["endpoints"][PROFILE_IMPORT]
    assert stats["received"] <= 2 and stats["throttled"] == stats["received"]
    limiter = FleetRateLimiter(fleet.redis, fleet.prefix)
    paused_until = limiter.paused_until("profile-import")
    assert paused_until is not None and paused_until >= started + 100
    assert limiter.parked("profile-import") is None  # under the cap: a pause, not a park
    assert fleet.dead_letters() == 0 and fleet.external_ids() == []


def test_a_throttle_longer_than_the_park_cap_parks_the_endpoint_and_raises_an_exception(fleet_factory):  # noqa: F811
    fleet = fleet_factory(long_throttle(67608), BCSYNC_THROTTLE_PARK_SECONDS="900")
    total = 60
    started = time.time()
    fleet.worker(LANE)
    fleet.submit([profile_op(n) for n in range(total)])
    schedule = DelayedSchedule(fleet.redis, fleet.prefix)
    wait_for(lambda: schedule.pending() == total and queued(fleet, LANE) == 0 and unacked_on(fleet, LANE) == 0,
             40, message="the parked endpoint's work in the delayed schedule")

    park = FleetRateLimiter(fleet.redis, fleet.prefix).parked("profile-import")
    assert park is not None and park.until >= started + 67000 and "900" in park.reason
    register = ExceptionRegister(fleet.redis, fleet.prefix, ExceptionOwners())
    (raised,) = register.list(type="endpoint_parked")
    assert raised.record_key == "profile-import" and raised.severity == "critical"
    assert raised.details["until"] >= started + 67000
    # parked work waits for the end of the throttle instead of spinning against Klaviyo
    first_due = schedule.next_due()
    assert first_due is not None and first_due >= started + 67000
    stats = fleet.stats()["endpoints"][PROFILE_IMPORT]
    # at most the request each pool process had on its way when the first 429 came back (concurrency 2), and
    # none after the park
    assert 1 <= stats["received"] <= 2
    assert fleet.dead_letters() == 0
