"""Klaviyo's per-account rate limits: fixed windows (burst = 1 s, steady = 60 s) per endpoint.

Every caller shares one budget per endpoint, as all private keys of a Klaviyo account do. Two knobs make the
account less tidy than the fleet's own clock: `phase` shifts the windows' boundaries (Klaviyo's minute need
not start on the fleet's), and `background` is another integration that takes that part of every window,
spread evenly over it (by any moment it has used its part pro rata to the window's time elapsed, as far as
the window had room: what the others took first it goes without). Stats record, per
endpoint, what arrived, what was let through and the most requests let through in any one window, so tests
can assert that a client never exceeded (and actually used) its budget.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# tier -> (burst per second, steady per minute), from the reference table
TIERS: dict[str, tuple[int, int]] = {
    "XL": (350, 3500),
    "L": (75, 750),
    "M": (10, 150),
    "DATA_PRIVACY": (3, 60),
    "VALUES": (1, 2),  # the reporting API's values reports (campaign, flow): also 225 a day
}
# tier -> requests per day (UTC day), where Klaviyo publishes one
DAILY: dict[str, int] = {"VALUES": 225}


def scaled(limit: int, scale: float) -> int:
    """Each tier number multiplied by the scale, rounded up, at least 1."""
    return max(1, math.ceil(limit * scale - 1e-9))


@dataclass
class Decision:
    allowed: bool
    retry_after: int = 0  # whole seconds until the blocking window resets (429 only)
    limit: int = 0  # steady limit, for the RateLimit-* headers
    remaining: int = 0
    reset: int = 0


@dataclass
class EndpointBudget:
    key: str
    tier: str
    burst_limit: int
    steady_limit: int
    burst_window: int = -1
    burst_count: int = 0
    steady_window: int = -1
    steady_count: int = 0
    burst_background: int = 0  # the background consumer's requests in the current windows
    steady_background: int = 0
    background: int = 0  # all its requests
    received: int = 0
    accepted: int = 0
    throttled: int = 0
    faults: int = 0
    max_burst_window: int = 0
    max_steady_window: int = 0
    daily_limit: int = 0  # 0: no daily limit
    daily_window: int = -1
    daily_count: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    def stats(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "burst_limit": self.burst_limit,
            "steady_limit": self.steady_limit,
            "received": self.received,
            "accepted": self.accepted,
            "throttled": self.throttled,
            "background": self.background,
            "faults": self.faults,
            "max_burst_window": self.max_burst_window,
            "max_steady_window": self.max_steady_window,
            "daily_limit": self.daily_limit,
            "daily_count": self.daily_count,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
        }


class RateLimiter:
    def __init__(self, scale: float = 1.0, enabled: bool = True) -> None:
        self.scale = scale
        self.enabled = enabled
        self.budgets: dict[str, EndpointBudget] = {}

    def budget(self, key: str, tier: str) -> EndpointBudget:
        found = self.budgets.get(key)
        if found is None:
            burst, steady = TIERS[tier]
            daily = DAILY.get(tier)
            found = EndpointBudget(key, tier, scaled(burst, self.scale), scaled(steady, self.scale),
                                   daily_limit=scaled(daily, self.scale) if daily else 0)
            self.budgets[key] = found
        return found

    def acquire(
        self, budget: EndpointBudget, now: float, other_share: float = 0.0, background: float = 0.0,
        phase: float = 0.0,
    ) -> Decision:
        """Take one request from both windows, or say how long until the blocking window resets. `other_share`
        of each window is gone from its start; `background` is taken over it; `phase` shifts the boundaries."""
        clock = now - phase
        second, minute = math.floor(clock), math.floor(clock / 60)
        if budget.burst_window != second:
            budget.burst_window, budget.burst_count, budget.burst_background = second, 0, 0
        if budget.steady_window != minute:
            budget.steady_window, budget.steady_count, budget.steady_background = minute, 0, 0
        burst_cap = budget.burst_limit - math.floor(budget.burst_limit * other_share)
        steady_cap = budget.steady_limit - math.floor(budget.steady_limit * other_share)
        if background:
            self._background(budget, background, clock - second, clock / 60 - minute, burst_cap, steady_cap)
        burst_used = budget.burst_count + budget.burst_background
        steady_used = budget.steady_count + budget.steady_background
        steady_reset = max(1, math.ceil((minute + 1) * 60 - clock))
        day = math.floor(now / 86400)
        if budget.daily_window != day:
            budget.daily_window, budget.daily_count = day, 0
        if self.enabled:
            waits = []
            if budget.daily_limit and budget.daily_count >= budget.daily_limit:
                waits.append(max(1, math.ceil((day + 1) * 86400 - now)))
            if burst_used >= burst_cap:
                waits.append(max(1, math.ceil(second + 1 - clock)))
            if steady_used >= steady_cap:
                waits.append(steady_reset)
            if waits:
                budget.throttled += 1
                return Decision(allowed=False, retry_after=max(waits), limit=budget.steady_limit)
        budget.burst_count += 1
        budget.steady_count += 1
        budget.daily_count += 1
        budget.accepted += 1
        budget.max_burst_window = max(budget.max_burst_window, budget.burst_count)
        budget.max_steady_window = max(budget.max_steady_window, budget.steady_count)
        return Decision(
            allowed=True,
            limit=budget.steady_limit,
            remaining=max(0, steady_cap - steady_used - 1),
            reset=steady_reset,
        )

    @staticmethod
    def _background(
        budget: EndpointBudget, share: float, burst_elapsed: float, steady_elapsed: float, burst_cap: int,
        steady_cap: int,
    ) -> None:
        """The other integration catches up with its part of the minute so far, as far as the window has room;
        in the current second only at its own pace (its part of the minute spread evenly), so a quiet spell of
        the fleet's does not come back as one burst."""
        pace = budget.steady_limit * share / 60  # its requests per second
        burst = max(0, min(math.floor(pace * burst_elapsed) - budget.burst_background,
                           burst_cap - budget.burst_count - budget.burst_background))
        budget.burst_background += burst
        steady = max(0, min(math.floor(budget.steady_limit * share * steady_elapsed) - budget.steady_background,
                            steady_cap - budget.steady_count - budget.steady_background))
        budget.steady_background += steady
        budget.background += steady

    def stats(self) -> dict[str, Any]:
        return {key: budget.stats() for key, budget in sorted(self.budgets.items())}

    def reset(self) -> None:
        """Fresh windows and zeroed stats; every endpoint stays listed."""
        self.budgets = {key: self.budget_fresh(old) for key, old in self.budgets.items()}

    def budget_fresh(self, old: EndpointBudget) -> EndpointBudget:
        return EndpointBudget(old.key, old.tier, old.burst_limit, old.steady_limit, daily_limit=old.daily_limit)
