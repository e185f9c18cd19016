"""`bcsync.handle_change`: one change event from the poller, dispatched to the flow of its resource.

Each flow module exposes `handle_change(event: ChangeEvent) -> None`; flows are imported lazily so a build
without one of them still starts (its resources are then logged and acknowledged, never crashing a worker).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from config.celery import app
from sync.changes import ChangeEvent

log = logging.getLogger(__name__)

FLOWS = {
    "order": "tasks.orders",
    "pick": "tasks.orders",
    "invoice": "tasks.orders",
    "creditmemo": "tasks.orders",
    "style": "tasks.stock",
    "inventory": "tasks.stock",
    "location": "tasks.stock",
}


@app.task(name="bcsync.handle_change", ignore_result=True, acks_late=True)
def handle_change(body: dict[str, Any]) -> None:
    event = ChangeEvent.model_validate(body)
    module_name = FLOWS.get(event.resource)
    if module_name is None:
        log.warning("no flow handles %s changes; %s acknowledged", event.resource, event.record_ref)
        return
    importlib.import_module(module_name).handle_change(event)
