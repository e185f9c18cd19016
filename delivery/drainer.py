"""The delayed-retry drainer: a thread in every worker's main process that publishes what is due, and keeps
the fleet's house on the same tick:
- publishes due entries of the delayed-retry schedule;
- probes Klaviyo after an outage and resumes waiting work when it answers (`delivery.probe`);
- puts back buffer claims of flushes that died between claim and publish (`state.buffers`);
- runs the watchdog (stale beat, stale buffers, dead letters near expiry: `delivery.watchdog`).
Each step fails on its own (a Redis blip is logged and retried on the next tick); none stops the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from delivery.probe import probe_after_outage
from delivery.publish import publish
from delivery.runtime import runtime
from delivery.watchdog import watch_if_due
from state.buffers import reclaim_stale_claims
from state.factory import stores

log = logging.getLogger(__name__)

RECLAIM_EVERY_SECONDS = 5.0


def drain_due() -> None:
    while stores().delayed.drain(publish) >= 500:
        pass


def reclaim() -> None:
    if reclaim_stale_claims(stores()):
        log.warning("put back the claims of a flush that died before publishing")


class Drainer(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="bcsync-delayed-drainer", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self._last: dict[str, float] = {}

    def _every(self, name: str, seconds: float, step: Callable[[], object]) -> None:
        now = time.monotonic()
        if now - self._last.get(name, float("-inf")) < seconds:
            return
        self._last[name] = now
        try:
            step()
        except Exception:  # a Redis blip must not kill the drainer; the next tick retries
            log.exception("drainer step %s failed", name)

    def run(self) -> None:
        while not self.stopping.is_set():
            self._every("drain", 0, drain_due)
            self._every("probe", 0, lambda: probe_after_outage(runtime()))
            self._every("reclaim", RECLAIM_EVERY_SECONDS, reclaim)
            self._every("watch", 5.0, lambda: watch_if_due(stores()))
            self.stopping.wait(self.interval)
