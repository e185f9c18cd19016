"""One computation per order at a time: the order locks on real Redis."""

from __future__ import annotations

import threading
import time

import redis

from state.order_locks import OrderLocks


def test_a_held_order_is_busy_for_another_holder_until_released(redis_client: redis.Redis) -> None:
    locks = OrderLocks(redis_client, "t", ttl_seconds=30)
    first = locks.acquire(["B", "A", "C"], wait_seconds=0)
    assert first.numbers == ["B", "A", "C"] and first.busy == [], "taken in one go, in the caller's order"
    second = locks.acquire(["C", "D"], wait_seconds=0)
    assert second.numbers == ["D"] and second.busy == ["C"]
    locks.release(first)
    third = locks.acquire(["A", "C"], wait_seconds=0)
    assert third.numbers == ["A", "C"]


def test_a_holder_waits_with_a_bound_for_a_lock_released_meanwhile(redis_client: redis.Redis) -> None:
    locks = OrderLocks(redis_client, "t", ttl_seconds=30)
    first = locks.acquire(["A"], wait_seconds=0)
    timer = threading.Timer(0.3, locks.release, args=[first])
    timer.start()
    started = time.monotonic()
    second = locks.acquire(["A", "B"], wait_seconds=5)
    timer.join()
    assert second.numbers == ["A", "B"] and second.busy == []
    assert 0.25 < time.monotonic() - started < 5

    started = time.monotonic()
    third = locks.acquire(["A"], wait_seconds=0.3)
    assert third.busy == ["A"] and time.monotonic() - started < 2, "never waits past its bound"


def test_a_lock_lost_by_expiry_is_reported_and_never_released_from_its_new_holder(redis_client: redis.Redis) -> None:
    locks = OrderLocks(redis_client, "t", ttl_seconds=0.2)
    first = locks.acquire(["A", "B"], wait_seconds=0)
    assert locks.confirm(first) == [], "still held: renewed"
    time.sleep(0.3)
    second = locks.acquire(["A"], wait_seconds=0)
    assert second.numbers == ["A"]
    assert sorted(locks.confirm(first)) == ["A", "B"], "expired (and A taken by another): both lost"
    locks.release(first)
    assert redis_client.get(locks.key("A")) == second.token, "releasing a lost lock leaves the new holder's"
