"""Per-process connections and state stores: created after fork, in the process that uses them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from config.mapping import get_mapping
from config.redis import redis_client
from config.settings import Settings, get_settings
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.limiter import FleetRateLimiter
from state.dead_letters import DeadLetters
from state.delayed import DelayedSchedule
from state.exceptions import ExceptionRegister
from state.ledger import Ledger


@dataclass
class Runtime:
    """Per-process connections and state stores (created after fork, in the process that uses them)."""

    settings: Settings
    redis: Any
    limiter: FleetRateLimiter
    ledger: Ledger
    dead_letters: DeadLetters
    delayed: DelayedSchedule
    exceptions: ExceptionRegister
    clients: dict[str, KlaviyoClient]

    def client(self, lane: str) -> KlaviyoClient:
        if lane not in self.clients:
            s = self.settings
            self.clients[lane] = KlaviyoClient(
                s.klaviyo_base_url, s.klaviyo_api_key.get_secret_value(), s.klaviyo_revision,
                limiter=self.limiter, lane=lane, timeout=s.klaviyo_timeout_seconds,
                max_connections=s.klaviyo_max_connections, max_inline_wait=s.max_inline_wait_seconds,
                park_after=s.throttle_park_seconds,
            )
        return self.clients[lane]


_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        s = get_settings()
        client = redis_client(s.redis_url)
        _runtime = (os.getpid(), Runtime(
            settings=s,
            redis=client,
            limiter=FleetRateLimiter(
                client, s.key_prefix, share=s.rate_share, fast_reserve=s.fast_reserve,
                batch_ceiling=s.batch_ceiling, scale=s.rate_limit_scale,
            ),
            ledger=Ledger(client, s.key_prefix, s.ledger_ttl_days),
            dead_letters=DeadLetters(client, s.key_prefix, s.dead_letter_ttl_days),
            delayed=DelayedSchedule(client, s.key_prefix),
            exceptions=ExceptionRegister(client, s.key_prefix, get_mapping().owners, s.exception_ttl_days),
            clients={},
        ))
    return _runtime[1]


def reset_runtime() -> None:
    global _runtime
    if _runtime is not None:
        for c in _runtime[1].clients.values():
            c.close()
    _runtime = None
