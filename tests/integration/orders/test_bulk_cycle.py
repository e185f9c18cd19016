"""Bulk-cycle detection and the batch-lane buffer of the order flow, on real Redis (no workers)."""

from __future__ import annotations

import redis

from config.mapping import Mapping, OrderLifecycle
from flows.orders import OrderContext, buffer_bulk, flush_bulk_buffer, is_bulk_cycle
from state.exceptions import ExceptionRegister
from state.ledger import Ledger
from state.orders import RedisOrderState
from sync.operations import Operation


def context(client: redis.Redis, threshold: int, max_wait: float = 3600.0
            ) -> tuple[OrderContext, list[list[Operation]], list[float]]:
    mapping = Mapping(lifecycle=OrderLifecycle(bulk_threshold=threshold))
    sent: list[list[Operation]] = []
    flushes: list[float] = []
    ctx = OrderContext(client, "t", mapping, RedisOrderState(client, "t", mapping), Ledger(client, "t"),
                       ExceptionRegister(client, "t", mapping.owners), sent.append,
                       schedule_flush=flushes.append, bulk_max_wait_seconds=max_wait)
    return ctx, sent, flushes


def event(n: int) -> Operation:
    return Operation(kind="event", key=f"event:Placed Order:{n}", lane="batch", payload={"metric": "Placed Order"})


def test_more_distinct_orders_than_the_threshold_within_one_poll_interval_is_a_bulk_cycle(redis_client):
    ctx, _, _ = context(redis_client, threshold=3)
    assert [is_bulk_cycle(ctx, "order", str(n), now=1000.0) for n in range(3)] == [False] * 3
    assert not is_bulk_cycle(ctx, "order", "2", now=1000.5), "the same order again is not another change"
    assert is_bulk_cycle(ctx, "order", "3", now=1001.0)
    assert not is_bulk_cycle(ctx, "pick", "3", now=1001.0), "counted per resource"
    # one poll interval (resources.order.poll_seconds = 30) later the window has emptied
    assert not is_bulk_cycle(ctx, "order", "9", now=1000.0 + 31 + 1)


def aggregate(n: int) -> Operation:
    return Operation(kind="profile_upsert", key=f"profile-aggregates:external_id:C{n}", lane="batch",
                     payload={"external_id": f"C{n}", "properties": {"erp_orders": n}})


def test_the_bulk_buffer_ships_whole_jobs_at_once_and_holds_the_tail_for_more(redis_client):
    ctx, sent, flushes = context(redis_client, threshold=3)
    for start in range(0, 2500, 300):  # pages of 300, as a bulk cycle or a backfill page pushes them
        buffer_bulk([event(n) for n in range(start, min(start + 300, 2500))], ctx)
    assert [len(ops) for ops in sent] == [1000, 1000], "whole jobs only: no tail goes out as its own job"
    assert len(flushes) == 1, "one flush scheduled for the tail, at its age bound"
    assert flush_bulk_buffer(ctx) == 0, "a tail younger than the age bound waits"
    buffer_bulk([event(n) for n in range(2500, 3000)], ctx)
    assert [len(ops) for ops in sent] == [1000, 1000, 1000], "the tail left with the next events, whole"
    keys = [op.key for ops in sent for op in ops]
    assert sorted(keys) == sorted(event(n).key for n in range(3000)), "each event once, none lost"
    assert all(op.lane == "batch" for ops in sent for op in ops)


def test_a_tail_past_its_age_bound_ships_and_a_drain_ships_every_tail(redis_client):
    ctx, sent, _ = context(redis_client, threshold=3, max_wait=0.0)
    buffer_bulk([event(n) for n in range(1200)], ctx)
    assert [len(ops) for ops in sent] == [1000]
    assert flush_bulk_buffer(ctx) == 200 and [len(ops) for ops in sent] == [1000, 200]
    waiting, waiting_sent, _ = context(redis_client, threshold=3)
    waiting.buffer = "t:backfill:orders:bulk"
    buffer_bulk([event(n) for n in range(1200, 1500)], waiting)
    assert flush_bulk_buffer(waiting) == 0 and flush_bulk_buffer(waiting, drain=True) == 300
    assert [len(ops) for ops in waiting_sent] == [300] and redis_client.llen(waiting.bulk_buffer) == 0


def test_profile_upserts_wait_in_a_list_of_their_own_so_event_jobs_stay_whole(redis_client):
    ctx, sent, _ = context(redis_client, threshold=3)
    ops = [op for n in range(1000) for op in ((event(n), aggregate(n)) if n % 3 == 0 else (event(n),))]
    buffer_bulk(ops, ctx)
    assert [(len(b), {op.kind for op in b}) for b in sent] == [(1000, {"event"})]
    assert flush_bulk_buffer(ctx, drain=True) == 334
    assert [(len(b), {op.kind for op in b}) for b in sent][1:] == [(334, {"profile_upsert"})]
