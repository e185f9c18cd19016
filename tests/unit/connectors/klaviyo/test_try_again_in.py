"""When a Klaviyo call that failed is worth making again, by what it raised."""

from __future__ import annotations

from connectors.klaviyo.errors import (
    EndpointParkedError,
    PermanentError,
    RateLimitedLocally,
    ThrottledError,
    TransientError,
    try_again_in,
)


def test_each_error_says_when_its_call_is_worth_making_again() -> None:
    now = 1_000.0
    assert try_again_in(RateLimitedLocally("budget", delay=0.4), 9.0, now) == 0.4  # its turn in line
    assert try_again_in(EndpointParkedError("parked", until=now + 30), 9.0, now) == 30.0
    assert try_again_in(EndpointParkedError("parked", until=now - 1), 9.0, now) == 0.0  # the park is over
    assert try_again_in(ThrottledError("429", retry_after=12.0), 9.0, now) == 12.0  # Klaviyo's Retry-After
    assert try_again_in(TransientError("timeout"), 9.0, now) == 9.0  # no word from Klaviyo: the caller's pace
    assert try_again_in(PermanentError("400"), 9.0, now) == 9.0
