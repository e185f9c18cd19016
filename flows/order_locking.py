"""One computation per order at a time (`state.order_locks`): `one_computation_per_order` wraps the order
flow's `sync_orders` so that load -> compute -> remember -> submit of an order runs under its lock.

Orders another worker is computing are not waited for long: after `lock_wait_seconds` they go to the delayed
schedule (`bcsync.orders.resync`, one entry per order, so repeats coalesce) and are computed again a moment
later from what is stored then - their documents are already stored, so nothing is lost and nothing is
acknowledged undone. `confirm_held` is called just before the results are written: a lock that expired
meanwhile (a computation slower than `lock_seconds`) means another worker may have computed those orders,
so nothing is written and they are synced again instead.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import redis

from config.task_names import RESYNC_ORDERS
from state.delayed import DelayedSchedule
from state.order_locks import Held, OrderLocks

log = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 1.0
F = TypeVar("F", bound=Callable[..., dict[str, Any]])


class LockingContext(Protocol):
    redis: redis.Redis
    key_prefix: str
    lock_seconds: float
    lock_wait_seconds: float


class LockLost(Exception):
    def __init__(self, numbers: list[str]) -> None:
        super().__init__(f"order lock lost before its results were written: {', '.join(numbers)}")
        self.numbers = numbers


@dataclass
class _Holding:
    locks: OrderLocks
    held: Held
    ctx: LockingContext
    options: dict[str, Any]


_holding: ContextVar[_Holding | None] = ContextVar("order_locks_held", default=None)


def one_computation_per_order(sync: F) -> F:
    """`sync(numbers, ctx, **options)` runs for the orders whose locks it gets; the others are synced again
    later with the same options (`lane`, `backfill`)."""

    @functools.wraps(sync)
    def locked(numbers: list[str], ctx: LockingContext, **options: Any) -> dict[str, Any]:
        numbers = list(dict.fromkeys(numbers))
        locks = OrderLocks(ctx.redis, ctx.key_prefix, ctx.lock_seconds)
        held = locks.acquire(numbers, ctx.lock_wait_seconds)
        if held.busy:
            log.info("%d order(s) computed by another worker now: synced again shortly", len(held.busy))
            resync_later(ctx, held.busy, options, BUSY_RETRY_SECONDS)
        if not held.numbers:
            return {}
        token = _holding.set(_Holding(locks, held, ctx, options))
        try:
            return sync(held.numbers, ctx, **options)
        except LockLost as lost:
            log.warning("%s; synced again shortly", lost)
            resync_later(ctx, held.numbers, options, BUSY_RETRY_SECONDS)
            return {}
        finally:
            _holding.reset(token)
            locks.release(held)

    return cast(F, locked)


def confirm_held() -> None:
    """Raise `LockLost` if any order lock of the running computation was lost (call it just before its
    results are written). Outside a locked computation it does nothing."""
    holding = _holding.get()
    if holding is None:
        return
    lost = holding.locks.confirm(holding.held)
    if lost:
        raise LockLost(lost)


def resync_current(numbers: list[str], delay: float) -> None:
    """Sync these orders of the running computation again after `delay` seconds, with its options."""
    holding = _holding.get()
    if holding is not None and numbers:
        resync_later(holding.ctx, numbers, holding.options, delay)


def resync_later(ctx: LockingContext, numbers: list[str], options: dict[str, Any], delay: float) -> None:
    """One delayed-schedule entry per order (`order-resync:<number>`: a repeat moves it, never doubles it)."""
    lane = options.get("lane")
    backfill = bool(options.get("backfill", False))
    queue = lane or ("batch" if backfill else "default")
    schedule = DelayedSchedule(ctx.redis, ctx.key_prefix)
    due = time.time() + delay * (1 + random.random() / 2)  # noqa: S311  jitter, not security
    for number in numbers:
        schedule.add(RESYNC_ORDERS, [[number], lane, backfill], queue, due, entry_id=f"order-resync:{number}")
