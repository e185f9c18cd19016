"""Full bulk jobs, end to end: the order flow's bulk buffer ships whole 1,000-event jobs; its tail waits for more
events or for the age bound (BCSYNC_BULK_MAX_WAIT_SECONDS), then leaves through the flush the buffer scheduled
or beat's - never lost, never twice. Real Redis, a real batch worker (its drainer runs the scheduled flush), the
Klaviyo sandbox over HTTP recording every request; the events are pushed by the flow's own `buffer_bulk`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from config.mapping import Mapping
from config.task_names import FLUSH_ORDER_BULK
from flows.orders import OrderContext, buffer_bulk
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from state.delayed import DelayedSchedule
from state.exceptions import ExceptionRegister
from state.keys import RedisKeys
from state.ledger import Ledger
from state.orders import RedisOrderState
from sync.operations import Operation
from tests.integration.delivery.test_bulk_delivery import event_op, submit_like_producers
from tests.integration.delivery.test_fleet_delivery import Fleet, fleet_factory  # noqa: F401  (the fleet fixture)
from tests.support.fleet import wait_for
from tests.support.recording import recorded_requests

pytestmark = pytest.mark.integration

EVENT_JOBS = "/api/event-bulk-create-jobs"
PAGE = 300  # events per push, as a bulk cycle's or a backfill page's orders push them


def event_jobs(record: Path) -> list[list[str]]:
    """The unique_ids of every event bulk job Klaviyo accepted, in the order they arrived."""
    jobs = []
    for entry in recorded_requests(record):
        if entry["method"] == "POST" and entry["path"] == EVENT_JOBS and entry["status"] == 202:
            groups = entry["body"]["data"]["attributes"]["events-bulk-create"]["data"]
            jobs.append([e["attributes"]["unique_id"] for g in groups for e in g["attributes"]["events"]["data"]])
    return jobs


def producer(fleet: Fleet, monkeypatch: pytest.MonkeyPatch, max_wait: float, schedule: bool = True) -> OrderContext:
    """The order flow's context as a worker's handler has it, over the fleet's Redis and broker; `schedule`
    False: the process that buffered died before scheduling its flush (only beat's is left)."""
    mapping = Mapping()
    delayed = DelayedSchedule(fleet.redis, fleet.prefix)

    def schedule_flush(at: float | None = None) -> None:
        delayed.add(FLUSH_ORDER_BULK, [], "batch", at if at is not None else 0.0)

    ctx = OrderContext(fleet.redis, fleet.prefix, mapping, RedisOrderState(fleet.redis, fleet.prefix, mapping),
                       Ledger(fleet.redis, fleet.prefix), ExceptionRegister(fleet.redis, fleet.prefix, mapping.owners),
                       lambda ops: submit_like_producers(monkeypatch, fleet, ops),
                       schedule_flush if schedule else None)
    ctx.bulk_max_wait_seconds = max_wait
    return ctx


def push(ctx: OrderContext, ops: list[Operation]) -> None:
    for start in range(0, len(ops), PAGE):
        buffer_bulk(ops[start:start + PAGE], ctx)


def events(first: int, count: int) -> list[Operation]:
    return [event_op(n, f"C{n % 97}") for n in range(first, first + count)]


def recorded_fleet(fleet_factory: Any, tmp_path: Path, **env: str) -> tuple[Fleet, Path]:  # noqa: F811
    record = tmp_path / "klaviyo.jsonl"
    fleet = fleet_factory(KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record), **env)
    return fleet, record


def test_2500_events_ship_as_two_whole_jobs_and_a_tail_of_500_after_the_age_bound(
    fleet_factory, monkeypatch, tmp_path  # noqa: F811
):
    fleet, record = recorded_fleet(fleet_factory, tmp_path, BCSYNC_BULK_MAX_WAIT_SECONDS="1")
    fleet.worker("batch")
    ops = events(0, 2500)
    push(producer(fleet, monkeypatch, max_wait=1.0), ops)

    wait_for(lambda: sum(map(len, event_jobs(record))) >= 2500, 60, message="2,500 events in Klaviyo")
    jobs = event_jobs(record)
    assert [len(job) for job in jobs] == [1000, 1000, 500], "whole jobs first, the tail last and alone"
    assert Counter(uid for job in jobs for uid in job) == Counter(op.payload["unique_id"] for op in ops)
    assert fleet.redis.llen(RedisKeys(fleet.prefix).order_bulk_buffer) == 0
    delivered = Ledger(fleet.redis, fleet.prefix).delivered([op.key for op in ops])
    assert len(delivered) == 2500 and fleet.dead_letters() == 0


def test_a_tail_waits_for_more_events_and_leaves_with_them_in_a_whole_job(
    fleet_factory, monkeypatch, tmp_path  # noqa: F811
):
    # an age bound of an hour: within the test only more events can take the tail out
    fleet, record = recorded_fleet(fleet_factory, tmp_path, BCSYNC_BULK_MAX_WAIT_SECONDS="3600")
    fleet.worker("batch")
    ctx = producer(fleet, monkeypatch, max_wait=3600.0)
    push(ctx, events(0, 2500))
    wait_for(lambda: sum(map(len, event_jobs(record))) >= 2000, 60, message="two whole jobs in Klaviyo")
    buffer = RedisKeys(fleet.prefix).order_bulk_buffer
    assert fleet.redis.llen(buffer) == 500, "the tail of 500 waits in the buffer"

    push(ctx, events(2500, 500))
    wait_for(lambda: sum(map(len, event_jobs(record))) >= 3000, 60, message="3,000 events in Klaviyo")
    jobs = event_jobs(record)
    assert [len(job) for job in jobs] == [1000, 1000, 1000]
    assert sorted(uid for job in jobs for uid in job) == sorted(f"SO{n}" for n in range(3000))
    assert fleet.redis.llen(buffer) == 0


def test_a_tail_whose_flush_was_never_scheduled_is_not_left_behind(
    fleet_factory, monkeypatch, tmp_path  # noqa: F811
):
    """The process that buffered the tail died before scheduling its flush: beat's periodic flush (here its
    message, as beat sends it) takes the tail out once it is past the age bound."""
    fleet, record = recorded_fleet(fleet_factory, tmp_path, BCSYNC_BULK_MAX_WAIT_SECONDS="1")
    fleet.worker("batch")
    push(producer(fleet, monkeypatch, max_wait=1.0, schedule=False), events(0, 1300))
    wait_for(lambda: sum(map(len, event_jobs(record))) >= 1000, 60, message="the whole job in Klaviyo")
    delayed = DelayedSchedule(fleet.redis, fleet.prefix)

    def beat_tick() -> bool:  # what beat's flush-order-bulk entry publishes every few seconds
        delayed.add(FLUSH_ORDER_BULK, [], "batch", 0.0)
        return sum(map(len, event_jobs(record))) >= 1300

    wait_for(beat_tick, 60, interval=1.0, message="the tail in Klaviyo")
    assert [len(job) for job in event_jobs(record)] == [1000, 300]
    assert fleet.redis.llen(RedisKeys(fleet.prefix).order_bulk_buffer) == 0
