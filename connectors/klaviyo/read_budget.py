"""Reconciliation's reads as the lowest class of the fleet-wide limiter: a settable share of what is left.

Reconciliation reads endpoints the fleet also uses to deliver (`GET /api/profiles` serves the consent guard). It
takes its slots through the fleet's limiter (`FleetRateLimiter`, as the batch lane: every cap, the fast reserve,
Klaviyo's reported window and 429 pauses apply), and before each one it also keeps to `share` of the room the
other lanes leave in both windows: with `used` requests in the window, `mine` of them reconciliation's and `cap`
the non-fast lanes' cap, it may take one more while `mine < share * (cap - (used - mine))`. So the guard always
comes first (its fast reserve is never touched) and live delivery keeps most of what is left.

Not atomic with the limiter's own step (one reconciliation runs at a time: `flows.reconcile` holds a lock), and
needs none: the limiter's Lua still enforces every cap in one step; this only holds reconciliation back further.
Its own counts: `<prefix>:rl:recon:<endpoint>:<window ms>:<index>` (expire with the window).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from connectors.klaviyo.limiter import FleetRateLimiter

WINDOWS = (("burst", 1000), ("steady", 60_000))


def admits(share: float, cap: int, used: int, mine: int) -> bool:
    """May reconciliation take one more slot in a window (the rule above)?"""
    return mine < math.floor(share * max(0, cap - (used - mine)))


class ReadBudget:
    def __init__(self, limiter: FleetRateLimiter, share: float, sleep: Callable[[float], None] = time.sleep,
                 max_wait: float = 120.0) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"reconciliation read share must be in (0, 1], got {share}")
        self.limiter = limiter
        self.share = share
        self.sleep = sleep
        self.max_wait = max_wait
        self.waited = 0.0  # seconds spent holding back, for the summary

    def _key(self, endpoint: str, size: int, now_ms: int) -> str:
        return f"{self.limiter.key_prefix}:rl:recon:{endpoint}:{size}:{now_ms // size}"

    def take(self, endpoint: str) -> None:
        """Wait until reconciliation's share of the endpoint's windows admits one more request, then count it.
        The limiter's own slot is taken by the client right after (`KlaviyoClient.request`)."""
        started = time.monotonic()
        while True:
            usage = self.limiter.usage(endpoint)
            now_ms = int(self.limiter.server_time() * 1000)
            keys = [self._key(endpoint, size, now_ms) for _, size in WINDOWS]
            mine = [int(v or 0) for v in self.limiter.redis.mget(keys)]
            ok = all(admits(self.share, usage[name]["caps"]["non_fast"], usage[name]["used"], m)
                     for (name, _), m in zip(WINDOWS, mine, strict=True))
            if ok or time.monotonic() - started > self.max_wait:
                pipe = self.limiter.redis.pipeline(transaction=False)
                for key, (_, size) in zip(keys, WINDOWS, strict=True):
                    pipe.incr(key)
                    pipe.pexpire(key, size + 5000)
                pipe.execute()
                return
            pause = max(0.02, min(usage["burst"]["resets_in"], 1.0))
            self.waited += pause
            self.sleep(pause)
