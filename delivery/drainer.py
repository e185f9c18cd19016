"""The delayed-retry drainer: a thread in every worker's main process that publishes what is due."""

from __future__ import annotations

import logging
import threading

from delivery.publish import publish
from state.factory import stores

log = logging.getLogger(__name__)


class Drainer(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="bcsync-delayed-drainer", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        schedule = stores().delayed
        while not self.stopping.is_set():
            try:
                while schedule.drain(publish) >= 500:
                    pass
            except Exception:  # a Redis blip must not kill the drainer; the next tick retries
                log.exception("draining the delayed-retry schedule failed")
            self.stopping.wait(self.interval)
