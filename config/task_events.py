"""Celery's task events, published in batches instead of one Redis PUBLISH per event.

A worker with an event loop buffers its task events (task-received, -started, -succeeded, ...) and publishes
the buffer as one ``task.multi`` message, which Flower and every Celery event receiver read as the events one
by one - but it flushes on the loop's next turn, which at one task per turn is a PUBLISH per event: about a
tenth of a single event's CPU in the worker and Redis (bench/compare.py). This consumer step flushes the
buffer at most every ``task_events_flush_seconds`` instead (and at once when it holds ``MAX_BUFFERED``), so
Flower sees a task's events that much later and the fleet pays one PUBLISH per batch.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps

MAX_BUFFERED = 500  # events held before a flush regardless of the interval (Celery's own default is 24)


class CoalescedTaskEvents(bootsteps.StartStopStep):
    """Runs after Celery's Events step on every consumer (re)start, so it also wraps the dispatcher a
    reconnection creates."""

    requires = ("celery.worker.consumer.events:Events",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.interval = float(c.app.conf.get("bcsync_task_events_flush_seconds") or 0.0)

    def start(self, c: Any) -> None:
        dispatcher = c.event_dispatcher
        if dispatcher is None or c.hub is None or self.interval <= 0:
            return
        dispatcher.buffer_limit = MAX_BUFFERED
        scheduled = False

        def flush() -> None:
            nonlocal scheduled
            scheduled = False
            c._flush_events()

        def on_buffered() -> None:
            nonlocal scheduled
            if not scheduled:
                scheduled = True
                c.hub.call_later(self.interval, flush)

        dispatcher.on_send_buffered = on_buffered

    def stop(self, c: Any) -> None:
        dispatcher = c.event_dispatcher
        if dispatcher is not None:  # what is still buffered goes out before the consumer stops
            try:
                dispatcher.flush()
            except Exception:  # noqa: BLE001  best effort: the broker may be what stopped the consumer
                pass
