"""`bcsync.handle_change`: one change event from the poller, dispatched to the flow of its resource.

Each flow module exposes `handle_change(event: ChangeEvent) -> None`; a resource no flow handles is logged
and acknowledged, never crashing a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from config.celery import app
from config.task_names import HANDLE_CHANGE
from flows import orders, stock
from sync.changes import ChangeEvent

log = logging.getLogger(__name__)

FLOWS: dict[str, Callable[[ChangeEvent], None]] = {
    "order": orders.handle_change,
    "pick": orders.handle_change,
    "invoice": orders.handle_change,
    "creditmemo": orders.handle_change,
    "style": stock.handle_change,
    "inventory": stock.handle_change,
    "location": stock.handle_change,
}


@app.task(name=HANDLE_CHANGE, ignore_result=True, acks_late=True)
def handle_change(body: dict[str, Any]) -> None:
    event = ChangeEvent.model_validate(body)
    flow = FLOWS.get(event.resource)
    if flow is None:
        log.warning("no flow handles %s changes; %s acknowledged", event.resource, event.record_ref)
        return
    flow(event)
