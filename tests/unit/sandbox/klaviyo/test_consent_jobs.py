"""Subscription jobs applied late and out of order (faults consent_job_delay_seconds, consent_job_jitter_seconds,
consent_job_reverse), over HTTP: a client reading consent back sees only what has been applied so far.
docs/sandbox.md "Bulk jobs" and "Faults"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import FakeClock, Running

EMAIL = "ann@example.com"
STEP = 0.15  # job_step_seconds: a job with no fault completes 2 steps after it was accepted


@pytest.fixture
def timed(start_sandbox: Callable[..., Running]) -> tuple[Running, FakeClock]:
    """A sandbox whose clock only moves when the test moves it (the background tick reads it too)."""
    clock = FakeClock()
    running = start_sandbox(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=STEP), clock)
    return running, clock


def set_faults(klaviyo: Running, **changes: Any) -> dict[str, Any]:
    response = httpx.post(f"{klaviyo.url}/_sandbox/faults", json=changes)
    assert response.status_code == 200, response.text
    faults: dict[str, Any] = response.json()
    return faults


def subscribe(klaviyo: Running) -> None:
    response = klaviyo.client.post(
        "/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe([bodies.email_subscribed(EMAIL)])
    )
    assert response.status_code == 202, response.text


def unsubscribe(klaviyo: Running) -> None:
    response = klaviyo.client.post(
        "/api/profile-subscription-bulk-delete-jobs", json=bodies.unsubscribe([bodies.email_unsubscribed(EMAIL)])
    )
    assert response.status_code == 202, response.text


def consent(klaviyo: Running) -> str | None:
    """Email marketing consent as a client reads it back (the consent lookup); None: no profile yet."""
    response = klaviyo.client.get(
        "/api/profiles",
        params={"filter": f'equals(email,"{EMAIL}")', "additional-fields[profile]": "subscriptions"},
    )
    assert response.status_code == 200, response.text
    profiles = response.json()["data"]
    if not profiles:
        return None
    state: str = profiles[0]["attributes"]["subscriptions"]["email"]["marketing"]["consent"]
    return state


def pending(klaviyo: Running) -> int:
    count: int = klaviyo.client.get("/_sandbox/state", params={"summary": 1}).json()["counts"]["jobs_pending"]
    return count


def complete_jobs(klaviyo: Running) -> None:
    assert httpx.post(f"{klaviyo.url}/_sandbox/complete-jobs").json() == {"pending": 0}


# --- defaults: today's behaviour -------------------------------------------------------------------------


def test_by_default_subscription_jobs_apply_after_two_steps_in_acceptance_order(
    timed: tuple[Running, FakeClock],
) -> None:
    klaviyo, clock = timed
    faults = klaviyo.client.get("/_sandbox/faults").json()
    assert (faults["consent_job_delay_seconds"], faults["consent_job_jitter_seconds"]) == (0.0, 0.0)
    assert faults["consent_job_reverse"] is False
    subscribe(klaviyo)
    clock.advance(0.1)
    unsubscribe(klaviyo)
    clock.advance(2 * STEP - 0.1 + 0.01)  # the subscribe is due, the unsubscribe not yet
    assert consent(klaviyo) == "SUBSCRIBED"
    clock.advance(0.1)
    assert consent(klaviyo) == "UNSUBSCRIBED"
    assert pending(klaviyo) == 0


def test_by_default_complete_jobs_applies_subscription_jobs_in_acceptance_order(
    timed: tuple[Running, FakeClock],
) -> None:
    klaviyo, _ = timed
    subscribe(klaviyo)
    unsubscribe(klaviyo)
    assert pending(klaviyo) == 2
    complete_jobs(klaviyo)
    assert consent(klaviyo) == "UNSUBSCRIBED"


# --- consent_job_delay_seconds ---------------------------------------------------------------------------


def test_delay_holds_subscription_jobs_back_until_due_and_only_them(timed: tuple[Running, FakeClock]) -> None:
    klaviyo, clock = timed
    assert klaviyo.client.post("/api/profile-import", json=bodies.profile_import(email=EMAIL)).status_code == 201
    set_faults(klaviyo, consent_job_delay_seconds=30)
    subscribe(klaviyo)
    bulk = bodies.bulk_import([{"email": "bob@example.com"}])
    assert klaviyo.client.post("/api/profile-bulk-import-jobs", json=bulk).status_code == 202
    clock.advance(2 * STEP + 0.01)
    assert klaviyo.client.get("/_sandbox/state", params={"summary": 1}).json()["counts"]["profiles"] == 2
    assert consent(klaviyo) == "NEVER_SUBSCRIBED"  # the bulk import is in, the subscribe is held
    clock.advance(29)
    assert consent(klaviyo) == "NEVER_SUBSCRIBED"
    assert pending(klaviyo) == 1
    clock.advance(1)
    assert consent(klaviyo) == "SUBSCRIBED"
    assert pending(klaviyo) == 0


def test_lifting_the_delay_releases_pending_subscription_jobs(timed: tuple[Running, FakeClock]) -> None:
    klaviyo, clock = timed
    set_faults(klaviyo, consent_job_delay_seconds=3600)
    subscribe(klaviyo)
    clock.advance(60)
    assert consent(klaviyo) is None  # the subscribe would create the profile: nothing is applied yet
    set_faults(klaviyo, consent_job_delay_seconds=0)
    assert consent(klaviyo) == "SUBSCRIBED"


def test_complete_jobs_applies_delayed_jobs_at_once(timed: tuple[Running, FakeClock]) -> None:
    klaviyo, _ = timed
    set_faults(klaviyo, consent_job_delay_seconds=3600)
    subscribe(klaviyo)
    unsubscribe(klaviyo)
    assert consent(klaviyo) is None
    complete_jobs(klaviyo)
    assert consent(klaviyo) == "UNSUBSCRIBED"  # same delay, no jitter: they fall due in acceptance order


# --- consent_job_reverse ---------------------------------------------------------------------------------


def test_reverse_applies_the_later_unsubscribe_before_the_earlier_subscribe(timed: tuple[Running, FakeClock]) -> None:
    klaviyo, clock = timed
    set_faults(klaviyo, consent_job_reverse=True)
    subscribe(klaviyo)
    clock.advance(0.2)
    unsubscribe(klaviyo)
    clock.advance(2 * STEP - 0.2 + 0.01)  # the subscribe is due, but a newer job is pending: held
    assert consent(klaviyo) is None
    assert pending(klaviyo) == 2
    clock.advance(0.2)  # both due: newest first
    assert consent(klaviyo) == "SUBSCRIBED"
    assert pending(klaviyo) == 0


def test_complete_jobs_applies_pending_subscription_jobs_newest_first_under_reverse(
    timed: tuple[Running, FakeClock],
) -> None:
    klaviyo, _ = timed
    set_faults(klaviyo, consent_job_reverse=True)
    subscribe(klaviyo)
    unsubscribe(klaviyo)
    complete_jobs(klaviyo)
    assert consent(klaviyo) == "SUBSCRIBED"


# --- consent_job_jitter_seconds --------------------------------------------------------------------------


def test_jitter_applies_jobs_late_and_in_either_order_reproducibly_by_seed(timed: tuple[Running, FakeClock]) -> None:
    klaviyo, clock = timed

    def outcome(seed: int) -> tuple[str | None, str | None]:
        """(consent just before any jitter could end, consent once every job is due) for one seed."""
        klaviyo.sandbox.reset()
        set_faults(klaviyo, seed=seed, consent_job_jitter_seconds=10)
        subscribe(klaviyo)
        unsubscribe(klaviyo)
        clock.advance(2 * STEP + 0.01)
        early = consent(klaviyo) if pending(klaviyo) == 2 else "partly applied"
        clock.advance(10)
        return early, consent(klaviyo)

    outcomes = {seed: outcome(seed) for seed in range(12)}
    finals = {final for _, final in outcomes.values()}
    assert finals == {"SUBSCRIBED", "UNSUBSCRIBED"}  # subscribe applied last for some seeds, first for others
    assert outcomes[3] == outcome(3) and outcomes[7] == outcome(7)  # the fault dice make it reproducible
    assert pending(klaviyo) == 0


def test_jitter_with_complete_jobs_applies_in_the_order_jobs_fall_due(timed: tuple[Running, FakeClock]) -> None:
    klaviyo, clock = timed

    def timed_outcome(seed: int) -> str | None:
        """Time moves in small steps, so jobs falling due apart are applied by separate advances."""
        klaviyo.sandbox.reset()
        set_faults(klaviyo, seed=seed, consent_job_jitter_seconds=10)
        subscribe(klaviyo)
        unsubscribe(klaviyo)
        for _ in range(44):
            clock.advance(0.25)
            pending(klaviyo)
        return consent(klaviyo)

    def forced_outcome(seed: int) -> str | None:
        klaviyo.sandbox.reset()
        set_faults(klaviyo, seed=seed, consent_job_jitter_seconds=10)
        subscribe(klaviyo)
        unsubscribe(klaviyo)
        complete_jobs(klaviyo)
        return consent(klaviyo)

    seeds = range(12)
    assert [forced_outcome(seed) for seed in seeds] == [timed_outcome(seed) for seed in seeds]


# --- validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [{"consent_job_delay_seconds": -1}, {"consent_job_jitter_seconds": -0.5}, {"consent_job_reverse": "yes"}],
)
def test_bad_consent_job_faults_are_refused(timed: tuple[Running, FakeClock], bad: dict[str, Any]) -> None:
    klaviyo, _ = timed
    response = httpx.post(f"{klaviyo.url}/_sandbox/faults", json=bad)
    assert response.status_code == 400
    assert next(iter(bad)) in response.json()["error"]
