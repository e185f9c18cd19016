"""Per-process connections: the state stores (`state.factory`), the fleet-wide rate limiter and one Klaviyo
client per lane, created after fork, in the process that uses them."""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field

import redis

from config.collector import set_up_collector
from config.lanes import LANES
from config.settings import Settings, get_settings
from connectors.klaviyo.client import KlaviyoClient, tls_context
from connectors.klaviyo.limiter import FleetRateLimiter
from state.dead_letters import DeadLetters
from state.delayed import DelayedSchedule
from state.exceptions import ExceptionRegister
from state.factory import Stores, reset_stores, stores
from state.ledger import Ledger
from state.throttles import ThrottleCounts

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    stores: Stores
    limiter: FleetRateLimiter
    clients: dict[str, KlaviyoClient] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.stores.settings

    @property
    def redis(self) -> redis.Redis:
        return self.stores.redis

    @property
    def ledger(self) -> Ledger:
        return self.stores.ledger

    @property
    def dead_letters(self) -> DeadLetters:
        return self.stores.dead_letters

    @property
    def delayed(self) -> DelayedSchedule:
        return self.stores.delayed

    @property
    def exceptions(self) -> ExceptionRegister:
        return self.stores.exceptions

    def client(self, lane: str) -> KlaviyoClient:
        if lane not in self.clients:
            s = self.settings
            self.clients[lane] = KlaviyoClient(
                s.klaviyo_base_url, s.klaviyo_api_key.get_secret_value(), s.klaviyo_revision,
                limiter=self.limiter, lane=lane, timeout=s.klaviyo_timeout_seconds,
                max_connections=s.klaviyo_max_connections, max_inline_wait=s.max_inline_wait_seconds,
                park_after=s.throttle_park_seconds,
                on_throttle=ThrottleCounts(self.redis, s.key_prefix).record,
            )
        return self.clients[lane]


def build_runtime(state: Stores) -> Runtime:
    s = state.settings
    # the senders' registry imports this module (its senders take a Runtime): read it when a runtime is built,
    # never at import time
    fast_lane_endpoints = importlib.import_module("delivery.registry").fast_lane_endpoints
    limiter = FleetRateLimiter(
        state.redis, s.key_prefix, share=s.rate_share, share_max=s.rate_share_max, fast_reserve=s.fast_reserve,
        batch_ceiling=s.batch_ceiling, scale=s.rate_limit_scale, fast_endpoints=fast_lane_endpoints(),
    )
    return Runtime(stores=state, limiter=limiter)


_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), build_runtime(stores()))
    return _runtime[1]


def before_the_pool_forks() -> None:
    """In a worker's main process, before it forks its pool: what every pool process would otherwise build on
    its first message and can inherit instead (the TLS context, with the CA bundle and httpx's transport), and
    the collector's settings, with what exists now frozen (a plain `celery worker` is no `bcsync` command)."""
    tls_context()
    set_up_collector(get_settings().gc_young_threshold)


def ready_for_the_first_message() -> None:
    """In a new pool process: its runtime and Klaviyo clients, so the first event after a start or a restart
    neither waits for them nor carries their cost."""
    try:
        rt = runtime()
        for lane in LANES:
            rt.client(lane)
    except Exception:  # noqa: BLE001  its first message builds them again, and says what is wrong
        log.warning("could not prepare this pool process; its first message will", exc_info=True)


def reset_runtime() -> None:
    global _runtime
    if _runtime is not None:
        for c in _runtime[1].clients.values():
            c.close()
    _runtime = None
    reset_stores()
