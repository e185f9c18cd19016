"""When a consent job counts as applied, from the profile's subscriptions read back (sync/customers/confirmation.py)."""

from __future__ import annotations

from typing import Any

import pytest

from sync.customers.confirmation import (
    CHECK_MAX_SECONDS,
    Observed,
    judge,
    next_check_delay,
    observed,
    resent,
    shows,
)

SENT = 1_000_000.0


def subscriptions(consent: str, last_updated: str | None = None) -> dict[str, Any]:
    return {"email": {"marketing": {"consent": consent, "last_updated": last_updated}},
            "sms": {"marketing": {"consent": "NEVER_SUBSCRIBED", "last_updated": None}}}


def verdict(action: str, seen: Observed | None, *, prior: str | None = None, prior_seen: float | None = None,
            seen_other: bool = False, now: float = SENT + 2, settle: float = 10.0) -> tuple[bool, bool]:
    v = judge(action, seen, prior=prior, prior_seen=prior_seen, seen_other=seen_other, claimed_at=SENT - 0.5,
              sent_at=SENT, now=now, settle=settle)
    return v.applied, v.other


def test_the_channel_s_marketing_consent_and_its_last_update_are_read_per_channel() -> None:
    subs = subscriptions("subscribed", "1970-01-12T13:46:40+00:00")
    assert observed(subs, "email") == Observed("SUBSCRIBED", 1_000_000.0)
    assert observed(subs, "sms") == Observed("NEVER_SUBSCRIBED", None)
    assert observed({}, "email") == Observed(None, None)
    assert observed(subscriptions("UNSUBSCRIBED", "not a time"), "email") == Observed("UNSUBSCRIBED", None)
    assert observed(subscriptions("SUBSCRIBED", "1970-01-12T13:46:40Z"), "email").last_updated == 1_000_000.0


def test_a_subscribe_shows_as_subscribed_an_unsubscribe_as_anything_else() -> None:
    assert shows("subscribe", "SUBSCRIBED") and not shows("subscribe", "UNSUBSCRIBED")
    assert not shows("subscribe", "NEVER_SUBSCRIBED") and not shows("subscribe", None)
    assert shows("unsubscribe", "UNSUBSCRIBED") and shows("unsubscribe", "NEVER_SUBSCRIBED")
    assert not shows("unsubscribe", "SUBSCRIBED")


def test_a_profile_in_another_state_than_the_job_sets_is_not_yet_and_remembered_as_seen_other() -> None:
    assert verdict("unsubscribe", Observed("SUBSCRIBED", SENT + 1)) == (False, True)
    assert verdict("subscribe", Observed("UNSUBSCRIBED", SENT + 1), now=SENT + 100) == (False, True)


def test_no_profile_confirms_an_unsubscribe_but_not_a_subscribe() -> None:
    assert verdict("unsubscribe", None) == (True, False)
    assert verdict("subscribe", None) == (False, True)


def test_the_state_proves_the_job_after_the_opposite_was_seen_or_settled_before_it() -> None:
    # no timestamp at all: only the change of state tells, and it does
    assert verdict("unsubscribe", Observed("UNSUBSCRIBED", None), seen_other=True) == (True, False)
    assert verdict("unsubscribe", Observed("UNSUBSCRIBED", None), prior="subscribe") == (True, False)


def test_a_state_the_profile_already_held_is_proven_only_by_a_newer_last_updated() -> None:
    # the previous job (a subscribe too) was seen with last_updated P: the same state later proves nothing ...
    assert verdict("subscribe", Observed("SUBSCRIBED", SENT - 50), prior="subscribe", prior_seen=SENT - 50) == (
        False, False)
    # ... until Klaviyo's own clock says the consent changed since
    assert verdict("subscribe", Observed("SUBSCRIBED", SENT - 49), prior="subscribe", prior_seen=SENT - 50) == (
        True, False)
    # no memory of the key: a change Klaviyo stamped after the claim (less the clock tolerance) proves it
    assert verdict("subscribe", Observed("SUBSCRIBED", SENT + 0.3)) == (True, False)
    assert verdict("subscribe", Observed("SUBSCRIBED", SENT - 60)) == (False, False)


def test_an_unprovable_job_counts_as_applied_once_its_settle_time_passed() -> None:
    stale = Observed("UNSUBSCRIBED", SENT - 3600)
    assert verdict("unsubscribe", stale, now=SENT + 9.9) == (False, False)
    assert verdict("unsubscribe", stale, now=SENT + 10) == (True, False)
    assert verdict("unsubscribe", Observed("UNSUBSCRIBED", None), now=SENT + 10) == (True, False)


def test_read_backs_back_off_and_never_skip_the_settle_time_or_the_bound() -> None:
    assert next_check_delay(0, first=2, bound=300) == 2
    assert next_check_delay(2, first=2, bound=300, settle=10) == 2
    assert next_check_delay(8, first=2, bound=300, settle=10) == pytest.approx(2.05)  # at the settle time
    assert next_check_delay(16, first=2, bound=300, settle=10) == 16
    assert next_check_delay(200, first=2, bound=300, settle=10) == CHECK_MAX_SECONDS
    assert next_check_delay(290, first=2, bound=300, settle=10) == pytest.approx(10.05)  # at the bound
    assert next_check_delay(400, first=2, bound=300) == CHECK_MAX_SECONDS  # past it: the caller gives up first
    assert next_check_delay(0, first=0.01, bound=300) == 0.2


def test_a_version_sent_again_counts_its_resends_and_still_sorts_before_a_newer_change() -> None:
    v1, v2 = "2026-03-01T10:00:00Z#000001", "2026-03-01T10:05:00Z#000001"
    assert resent(v1) == 0 and resent(v1 + "~again") == 1 and resent(v1 + "~again~again") == 2
    assert v1 < v1 + "~again" < v1 + "~again~again" < v2
