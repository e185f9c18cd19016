"""Freshness and lag: is every part of the fleet keeping up? Each check is a value per subject against its
threshold in the settings (0 turns it off):

- `watermark_age` per resource: seconds since its watermark (the newest Blue Cherry change handed on);
  exception `watermark_stale` - unless the poller reads the resource cleanly (its last cycle neither failed nor
  held the watermark back, and ended within the read bound): an old watermark is then a resource that has not
  changed in Blue Cherry, not a late one;
- `read_age` per resource: seconds since the poller's last successful read of it (threshold: its poll interval
  plus the setting); `poller_read_stale`;
- `queue_age` per lane: seconds the oldest message on the lane (or its taking list) has waited; `lane_lagging`;
- `delayed_overdue` per lane: seconds its most overdue delayed retry is past its due time; `delayed_overdue`;
- `throttles` per endpoint: Klaviyo 429s in the last `klaviyo_429_window_seconds`; `klaviyo_throttled`;
- `budget_use` per endpoint: part of the fleet's share of Klaviyo's steady limit used this minute;
  `budget_exhausted`.

`readings` computes them from Redis (also for `bcsync status` and the metrics endpoint); `check` (beat's
`bcsync.monitor.freshness`, on the fast lane) turns a crossing into one exception with its owner and one Sentry
message, and resolves the exception once the value has stayed under its threshold for
`freshness_clear_after_seconds` (state/freshness.py keeps each crossing, so neither repeats per check).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from config.lanes import LANES
from config.sentry import report_message
from connectors.klaviyo.endpoints import ENDPOINTS
from connectors.klaviyo.limiter import FleetRateLimiter
from state.factory import Stores
from state.freshness import FreshnessCrossings
from state.poller_health import PollerHealth
from state.queue_ages import oldest_ages
from state.throttles import ThrottleCounts
from state.watermarks import WatermarkStore

log = logging.getLogger(__name__)

# the exception type of each check (config/exception_types.py: owner, meaning, action)
FreshnessType = Literal["watermark_stale", "poller_read_stale", "lane_lagging", "delayed_overdue",
                        "klaviyo_throttled", "budget_exhausted"]
# check -> (exception type, unit, what the value is, for reasons and status lines)
CHECKS: dict[str, tuple[FreshnessType, str, str]] = {
    "watermark_age": ("watermark_stale", "s", "watermark age"),
    "read_age": ("poller_read_stale", "s", "last successful read"),
    "queue_age": ("lane_lagging", "s", "oldest queued message"),
    "delayed_overdue": ("delayed_overdue", "s", "oldest delayed retry overdue"),
    "throttles": ("klaviyo_throttled", "", "Klaviyo 429s in the window"),
    "budget_use": ("budget_exhausted", "", "budget use (part of the share)"),
}
WHY: dict[str, str] = {
    "watermark_age": "the poller is stopped or failing, or the resource has not changed in Blue Cherry since",
    "read_age": "the poller is stopped, holds no lock, or its reads of the resource fail",
    "queue_age": "the lane's workers are down or cannot keep up",
    "delayed_overdue": "no worker's drainer publishes the delayed schedule",
    "throttles": "Klaviyo throttles the fleet: another integration uses the quota, or the share is too high",
    "budget_use": "the endpoint's work waits for budget",
}


@dataclass(frozen=True)
class Reading:
    check: str
    subject: str
    value: float | None  # None: not known (never read, nothing to say)
    threshold: float  # 0: not checked
    # the value is over but says nothing late: a watermark that is old only because the resource has not changed
    # in Blue Cherry while the poller reads it every cycle without holding the watermark back
    quiet: bool = False

    @property
    def over(self) -> bool:
        return self.threshold > 0 and self.value is not None and self.value > self.threshold and not self.quiet

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "over": self.over}

    def describe(self) -> str:
        """`watermark age of customer 41 s (threshold 30 s)`."""
        _, unit, what = CHECKS[self.check]
        value = "-" if self.value is None else _num(self.value)
        unit = f" {unit}" if unit else ""
        return f"{what} of {self.subject} {value}{unit} (threshold {_num(self.threshold)}{unit})"


def _num(value: float) -> str:
    return f"{value:.2f}" if value < 10 and value != int(value) else f"{value:.0f}"


def limiter_of(st: Stores) -> FleetRateLimiter:
    s = st.settings
    return FleetRateLimiter(st.redis, s.key_prefix, share=s.rate_share, share_max=s.rate_share_max,
                            fast_reserve=s.fast_reserve, batch_ceiling=s.batch_ceiling, scale=s.rate_limit_scale)


def lane_threshold(st: Stores, lane: str) -> float:
    return float(getattr(st.settings, f"queue_age_max_{lane}_seconds", 0.0))


def budget_use(limiter: FleetRateLimiter) -> dict[str, dict[str, Any]]:
    """Endpoint -> its windows this second and minute (`FleetRateLimiter.usage`), for endpoints used in the last
    day (the limiter keeps a share for them)."""
    return {endpoint: limiter.usage(endpoint) for endpoint in ENDPOINTS if limiter.share_state(endpoint) is not None}


def readings(st: Stores, now: float | None = None, limiter: FleetRateLimiter | None = None,
             usage: dict[str, dict[str, Any]] | None = None) -> list[Reading]:
    """Every check's value per subject, now."""
    now = time.time() if now is None else now
    s = st.settings
    out: list[Reading] = []
    marks = WatermarkStore(st.redis, s.key_prefix).all()
    health = PollerHealth(st.redis, s.key_prefix).all()
    for name in type(st.mapping.resources).model_fields:
        cycles = health.get(name)
        ok_at = None if cycles is None else cycles.ok_at
        poll = float(getattr(st.mapping.resources, name).poll_seconds)
        read = Reading("read_age", name, None if ok_at is None else round(max(0.0, now - ok_at), 3),
                       s.poller_read_max_delay_seconds + poll if s.poller_read_max_delay_seconds > 0 else 0.0)
        # read within its bound (poll interval + the read delay, at least one more interval), the last cycle
        # neither failed nor held the watermark back: the poller has seen everything there is
        reading_cleanly = (cycles is not None and read.value is not None and cycles.held == 0
                           and read.value <= max(read.threshold, 2 * poll))
        mark = marks.get(name)
        out.append(Reading("watermark_age", name, None if mark is None else round(max(0.0, now - mark.timestamp()), 3),
                           s.watermark_max_age_by_resource.get(name, s.watermark_max_age_seconds),
                           quiet=reading_cleanly))
        out.append(read)
    for lane, age in oldest_ages(st.redis, s.key_prefix, LANES, now).items():
        out.append(Reading("queue_age", lane, age, lane_threshold(st, lane)))
    overdue = st.delayed.overdue(now)
    out.extend(Reading("delayed_overdue", lane, overdue.get(lane, 0.0), s.delayed_overdue_max_seconds)
               for lane in LANES)
    for endpoint, count in sorted(ThrottleCounts(st.redis, s.key_prefix).recent(s.klaviyo_429_window_seconds,
                                                                                   now).items()):
        out.append(Reading("throttles", endpoint, float(count), float(s.klaviyo_429_max)))
    if usage is None:
        usage = budget_use(limiter or limiter_of(st))
    for endpoint, used in sorted(usage.items()):
        total = used["steady"]["caps"]["total"]
        out.append(Reading("budget_use", endpoint, round(used["steady"]["used"] / total, 4) if total else None,
                           s.budget_use_max))
    return out


@dataclass(frozen=True)
class Transition:
    reading: Reading
    raised: bool  # True: the crossing started; False: it cleared


def check(st: Stores, now: float | None = None, limiter: FleetRateLimiter | None = None) -> list[Transition]:
    """Compare every reading with its threshold; report each crossing once and resolve it once it clears."""
    now = time.time() if now is None else now
    s = st.settings
    crossings = FreshnessCrossings(st.redis, s.key_prefix)
    seen: set[tuple[str, str]] = set()
    changed: list[Transition] = []
    for reading in readings(st, now, limiter):
        seen.add((reading.check, reading.subject))
        if reading.over:
            assert reading.value is not None
            if crossings.over(reading.check, reading.subject, reading.value, reading.threshold, now):
                _raise(st, reading)
                changed.append(Transition(reading, raised=True))
            else:  # still over: the open exception's reason keeps its latest value
                _record(st, reading)
        elif crossings.under(reading.check, reading.subject, now, s.freshness_clear_after_seconds, reading.value):
            _clear(st, reading)
            changed.append(Transition(reading, raised=False))
    # a subject that is gone (an endpoint no longer throttled, a resource removed) is under its threshold
    for check_name, subject in crossings.all():
        if (check_name, subject) not in seen and check_name in CHECKS:
            gone = Reading(check_name, subject, None, 0.0)
            if crossings.under(check_name, subject, now, s.freshness_clear_after_seconds):
                _clear(st, gone)
                changed.append(Transition(gone, raised=False))
    return changed


def _reason(reading: Reading) -> str:
    return f"{reading.describe()}: {WHY[reading.check]}"


def _record(st: Stores, reading: Reading) -> None:
    kind = CHECKS[reading.check][0]
    st.exceptions.record(kind, reading.subject, _reason(reading), severity="error",
                         details={"check": reading.check, "value": reading.value, "threshold": reading.threshold})


def _raise(st: Stores, reading: Reading) -> None:
    _record(st, reading)
    kind = CHECKS[reading.check][0]
    owner = st.exceptions.owners.owner_of(kind)
    message = f"bcsync {kind} {reading.subject}: {_reason(reading)} (owner: {owner})"
    log.warning("%s", message)  # a warning: Sentry gets the one message below, not one per log line
    report_message(message, level="error", tags={"bcsync.check": reading.check, "bcsync.subject": reading.subject,
                                                 "bcsync.owner": owner},
                   fingerprint=("bcsync-freshness", reading.check, reading.subject))


def _clear(st: Stores, reading: Reading) -> None:
    kind = CHECKS[reading.check][0]
    st.exceptions.resolve(kind, reading.subject)
    log.info("%s %s cleared: %s", kind, reading.subject, reading.describe())


def open_crossings(st: Stores) -> list[dict[str, Any]]:
    """The crossings not cleared yet, for `bcsync status`."""
    found = FreshnessCrossings(st.redis, st.settings.key_prefix).all()
    return [{"check": check_name, "subject": subject, "type": CHECKS.get(check_name, ("?",))[0], **c.model_dump()}
            for (check_name, subject), c in sorted(found.items())]


def subjects(rs: Iterable[Reading], check_name: str) -> dict[str, Reading]:
    return {r.subject: r for r in rs if r.check == check_name}
