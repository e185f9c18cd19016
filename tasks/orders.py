"""Celery entry points of the order flow (`flows/orders.py`)."""

from __future__ import annotations

import logging

from config.celery import app
from config.lanes import Lane
from config.task_names import FLUSH_ORDER_BULK, RELEASE_ORDERS, RESYNC_ORDERS
from delivery.runtime import runtime
from flows import orders
from flows.order_release import release_due
from state.keys import RedisKeys

log = logging.getLogger(__name__)


@app.task(name=FLUSH_ORDER_BULK, ignore_result=True, acks_late=True)
def flush_bulk() -> None:
    """Whole jobs and aged tails of the live order bulk buffer and of the backfill's (whose own run flushes
    it, but a run killed mid-way must not leave its tail behind): scheduled by the buffer, and by beat."""
    ctx = orders.default_context()
    sent = orders.flush_bulk_buffer(ctx)
    ctx.buffer = RedisKeys(ctx.key_prefix).backfill_bulk_buffer
    sent += orders.flush_bulk_buffer(ctx)
    if sent:
        log.info("order bulk buffers: %d operations submitted on the batch lane", sent)


@app.task(name=RESYNC_ORDERS, ignore_result=True, acks_late=True)
def resync(numbers: list[str], lane: Lane | None = None, backfill: bool = False) -> None:
    orders.resync(numbers, orders.default_context(), lane=lane, backfill=backfill)


@app.task(name=RELEASE_ORDERS, ignore_result=True, acks_late=True)
def release() -> None:
    """Beat, every minute: closed orders past their grace period keep only their facts (flows/order_release.py)."""
    ctx = orders.default_context()
    released = release_due(ctx, limit=runtime().settings.order_release_batch)
    if released:
        log.info("released %d closed order(s)", len(released))
