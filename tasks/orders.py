"""Celery entry points of the order flow (`flows/orders.py`)."""

from __future__ import annotations

import logging

from config.celery import app
from config.lanes import Lane
from config.task_names import FLUSH_ORDER_BULK, RESYNC_ORDERS
from flows import orders

log = logging.getLogger(__name__)


@app.task(name=FLUSH_ORDER_BULK, ignore_result=True, acks_late=True)
def flush_bulk() -> None:
    sent = orders.flush_bulk_buffer(orders.default_context())
    log.info("order bulk buffer: %d operations submitted on the batch lane", sent)


@app.task(name=RESYNC_ORDERS, ignore_result=True, acks_late=True)
def resync(numbers: list[str], lane: Lane | None = None, backfill: bool = False) -> None:
    orders.resync(numbers, orders.default_context(), lane=lane, backfill=backfill)
