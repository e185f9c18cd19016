"""Bulk-cycle detection and the batch-lane buffer of the order flow, on real Redis (no workers)."""

from __future__ import annotations

import redis

from config.mapping import Mapping, OrderLifecycle
from flows.orders import OrderContext, buffer_bulk, flush_bulk_buffer, is_bulk_cycle
from state.exceptions import ExceptionRegister
from state.ledger import Ledger
from state.orders import RedisOrderState
from sync.operations import Operation


def context(client: redis.Redis, threshold: int) -> tuple[OrderContext, list[list[Operation]], list[int]]:
    mapping = Mapping(lifecycle=OrderLifecycle(bulk_threshold=threshold))
    sent: list[list[Operation]] = []
    flushes: list[int] = []
    ctx = OrderContext(client, "t", mapping, RedisOrderState(client, "t", mapping), Ledger(client, "t"),
                       ExceptionRegister(client, "t", mapping.owners), sent.append,
                       schedule_flush=lambda: flushes.append(1))
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


def test_the_bulk_buffer_submits_full_bulk_requests_and_schedules_one_flush_for_the_rest(redis_client):
    ctx, sent, flushes = context(redis_client, threshold=3)
    buffer_bulk([event(n) for n in range(10)], ctx)
    buffer_bulk([event(n) for n in range(10, 20)], ctx)
    assert sent == [] and flushes == [1], "one delayed flush for a partial buffer"
    buffer_bulk([event(n) for n in range(20, 1500)], ctx)
    assert [len(ops) for ops in sent] == [1000, 500], "a full buffer goes out at once, in 1000s"
    buffer_bulk([event(2000)], ctx)
    assert flush_bulk_buffer(ctx) == 1 and [len(ops) for ops in sent][-1] == 1
    assert all(op.lane == "batch" for ops in sent for op in ops)
