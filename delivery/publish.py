"""Handing work to the broker: the poller and the flows submit operations; the engine publishes follow-ups."""

from __future__ import annotations

from typing import Any

from config.celery import app
from config.task_names import DELIVER
from delivery.packing import group_for_delivery
from sync.operations import Operation


def publish(task: str, args: list[Any], queue: str) -> None:
    app.send_task(task, args=args, queue=queue)


def submit(operations: list[Operation]) -> int:
    """Enqueue operations for delivery on their lanes; returns the number of messages published.
    Returns only after the broker has every message (the poller advances its watermark after this)."""
    return publish_envelopes(group_for_delivery(operations))


def publish_envelopes(envelopes: list[dict[str, Any]]) -> int:
    """Publish delivery envelopes on their lanes over one producer; returns the number published."""
    with app.producer_or_acquire() as producer:
        for env in envelopes:
            app.send_task(DELIVER, args=[env], queue=env["lane"], producer=producer)
    return len(envelopes)
