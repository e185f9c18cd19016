"""When a consent job Klaviyo accepted (202) has been applied, judged from the profile's subscriptions read back.

Klaviyo has no status for subscription jobs; the fleet sends one job per customer and channel at a time and
reads the profile back (`additional-fields[profile]=subscriptions`) until the job shows. The rules:
- a subscribe shows as the channel's marketing consent `SUBSCRIBED`; an unsubscribe as anything else, or as no
  profile at all (there is nothing left to unsubscribe);
- the state a job sets proves it applied when the profile was seen in another state since the job was sent, or
  when the job before it (settled, remembered an hour) set the opposite: only this job could have changed it;
- when the profile already held that state (a second subscribe, or no memory of the key), the state proves
  nothing. Klaviyo's `last_updated` of the channel's consent then says it: later than at the job before it
  (both Klaviyo's clock), or - with no such job - not older than the claim, give or take `CLOCK_TOLERANCE`;
- failing that (Klaviyo need not move `last_updated` for a change to the state it holds), the job counts as
  applied `settle` seconds after it was sent: its state holds either way, and the next change waits that long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sync.customers.consent import klaviyo_instant

CLOCK_TOLERANCE = 1.0  # seconds: the fleet's clock against Klaviyo's, only where no earlier job gives a baseline
CHECK_MAX_SECONDS = 30.0  # the longest gap between two read-backs of one job
AGAIN = "~again"  # a version resent: sorts after the version it repeats, before any newer ERP change


@dataclass(frozen=True)
class Observed:
    """The channel's marketing consent of a profile as read back; `last_updated` in epoch seconds."""

    consent: str | None
    last_updated: float | None


@dataclass(frozen=True)
class Verdict:
    applied: bool
    other: bool = False  # the profile was seen in another state than the job sets: a later match proves it


def _epoch(text: Any) -> float | None:
    moment = klaviyo_instant(text)
    return None if moment is None else moment.timestamp()


def observed(subscriptions: dict[str, Any] | None, channel: str) -> Observed:
    marketing = ((subscriptions or {}).get(channel) or {}).get("marketing") or {}
    consent = marketing.get("consent")
    return Observed(str(consent).upper() if consent else None, _epoch(marketing.get("last_updated")))


def shows(action: str, consent: str | None) -> bool:
    """Whether a profile's consent is the state a job of `action` sets."""
    return (consent == "SUBSCRIBED") == (action == "subscribe")


def judge(action: Literal["subscribe", "unsubscribe"] | str, seen: Observed | None, *, prior: str | None,
          prior_seen: float | None, seen_other: bool, claimed_at: float, sent_at: float, now: float,
          settle: float) -> Verdict:
    """Whether the job has been applied; `seen` None: no profile has the job's identifier."""
    if seen is None:
        return Verdict(applied=action == "unsubscribe", other=action != "unsubscribe")
    if not shows(action, seen.consent):
        return Verdict(applied=False, other=True)
    if seen_other or (prior is not None and prior != action):
        return Verdict(applied=True)
    if seen.last_updated is not None:
        baseline = prior_seen if prior == action and prior_seen is not None else claimed_at - CLOCK_TOLERANCE
        if seen.last_updated > baseline:
            return Verdict(applied=True)
    return Verdict(applied=now - sent_at >= settle)


def next_check_delay(age: float, first: float, bound: float, settle: float | None = None) -> float:
    """When to read a job back again, `age` seconds after it was sent: about doubling the time waited (at most
    `CHECK_MAX_SECONDS` apart), never past the moment its settle time or its bound comes."""
    delay = max(first, min(CHECK_MAX_SECONDS, age))
    for moment in (settle, bound):
        if moment is not None and age < moment:
            delay = min(delay, moment - age + 0.05)
    return max(0.2, delay)


def resent(version: str) -> int:
    """How many times the change of this version was sent again already."""
    return version.count(AGAIN)
