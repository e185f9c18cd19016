"""The worker heartbeat: a thread in every worker's main process that vouches, every few seconds, for each
message the worker holds, in kombu's own unacknowledged index (`state/unacked.py` says why that works).

While the worker lives its messages never look older than one interval, so kombu's sweep restores only the
messages of a worker that died, and does so once they are past the visibility timeout: a dead worker's work is
back on its lane within `visibility timeout + redelivery check`, however long a live worker's tasks run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from celery.worker import state as worker_state

from state.factory import stores
from state.unacked import UnackedMessages

log = logging.getLogger(__name__)


def held_delivery_tags() -> set[str]:
    """The delivery tags of every message this worker process holds unacknowledged: reserved (waiting for
    a pool slot), active (running, or finished and not yet acknowledged) and scheduled (an ETA or countdown).
    Read in the main process, where the consumer keeps Celery's request bookkeeping."""
    tags: set[str] = set()
    for requests in (worker_state.reserved_requests, worker_state.active_requests,
                     worker_state.scheduled_requests):
        for request in _snapshot(requests):
            tag = getattr(getattr(request, "message", None), "delivery_tag", None)
            if tag:
                tags.add(str(tag))
    return tags


def _snapshot(requests: Iterable[object]) -> list[object]:
    # the consumer adds and discards requests in the main thread while this thread copies the WeakSet
    for _ in range(10):
        try:
            return list(requests)
        except RuntimeError:
            continue
    return []


class Heartbeat(threading.Thread):
    def __init__(self, interval: float, held: Callable[[], set[str]] = held_delivery_tags,
                 unacked: UnackedMessages | None = None) -> None:
        super().__init__(name="bcsync-heartbeat", daemon=True)
        self.interval = interval
        self.held = held
        self.unacked = unacked
        self.stopping = threading.Event()

    def run(self) -> None:
        unacked = self.unacked or UnackedMessages(stores().redis, stores().settings.key_prefix)
        known: set[str] = set()
        while not self.stopping.is_set():
            try:
                held = self.held()
                unacked.refresh(held - known, held & known, time.time())
                known = held
            except Exception:  # a Redis blip must not end the heartbeat: the next beat retries
                log.exception("refreshing the unacknowledged messages of this worker failed")
            self.stopping.wait(self.interval)
