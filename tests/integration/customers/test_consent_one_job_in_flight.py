"""The last ERP state is the one Klaviyo ends with (issue 13): Klaviyo applies subscription jobs asynchronously,
late and - here - newest first, so a subscribe and an unsubscribe of one profile in flight together could land
in either order. The fleet keeps one consent job in flight per customer and channel: a later change waits until
the profile's subscriptions read back show the earlier job applied, and past a bound it raises
`consent_unconfirmed` and sends the latest state again.

The real poller, real fast and batch workers at concurrency 2, both sandboxes; the Klaviyo sandbox answers the
subscription endpoints late and holds their jobs back (`consent_job_delay_seconds`), applying them newest first
(`consent_job_reverse`). This module's fleet reads a job back first after 0.5 s and gives up after 10 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.customers.conftest import (
    SUBSCRIBE,
    UNSUBSCRIBE,
    CustomerFleet,
    customer_fleet,
    marketing,
)
from tests.support.fleet import wait_for
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration

BOUND = 10.0
HELD = 3.0  # seconds Klaviyo holds each subscription job: the first is pending when the second change comes
JOB_TYPES = {"profile-subscription-bulk-create-job": "subscribe", "profile-subscription-bulk-delete-job": "unsubscribe"}


@pytest.fixture(scope="module")
def fleet(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CustomerFleet]:
    with customer_fleet(redis_server, tmp_path_factory, BCSYNC_CONSENT_CONFIRM_SECONDS=str(BOUND),
                        BCSYNC_CONSENT_SETTLE_SECONDS="1", BCSYNC_CONSENT_CHECK_SECONDS="0.5") as made:
        yield made


@pytest.fixture
def reordering(fleet: CustomerFleet) -> Iterator[None]:
    """Subscription requests answered 300 ms late, their jobs held HELD s and applied newest first."""
    faults(fleet, latency_ms=300, endpoints=[SUBSCRIBE, UNSUBSCRIBE], consent_job_delay_seconds=HELD,
           consent_job_reverse=True)
    yield
    faults(fleet, latency_ms=0, endpoints=None, consent_job_delay_seconds=0, consent_job_reverse=False)


def faults(fleet: CustomerFleet, **settings: Any) -> None:
    httpx.post(f"{fleet.klaviyo_url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()


def complete_jobs(fleet: CustomerFleet) -> None:
    """Klaviyo applies whatever it still holds, in its own order (newest first here)."""
    httpx.post(f"{fleet.klaviyo_url}/_sandbox/complete-jobs", timeout=30).raise_for_status()


def consent_jobs_since(fleet: CustomerFleet, since: float) -> list[tuple[str, float, float | None]]:
    """(action, accepted at, applied at) of the subscription jobs Klaviyo accepted since `since`, in order."""
    jobs = []
    for job in fleet.state()["jobs"].values():
        accepted = datetime.fromisoformat(job["created_at"]).timestamp()
        if job["type"] in JOB_TYPES and accepted >= since:
            applied = datetime.fromisoformat(job["completed_at"]).timestamp() if job["completed_at"] else None
            jobs.append((JOB_TYPES[job["type"]], accepted, applied))
    return sorted(jobs, key=lambda j: j[1])


def customer(fleet: CustomerFleet, email: str, **fields: Any) -> str:
    code = str(fleet.new_customer(email=email, **fields)["customer"])
    fleet.poll()
    fleet.wait_profile(code, message=f"{code}'s profile")
    return code


def change_while_the_first_is_in_flight(fleet: CustomerFleet, code: str, first: bool, then: bool) -> float:
    """Two ERP consent changes of the customer's email, the second while the first's job is pending in Klaviyo;
    returns when the first change was made."""
    endpoint = SUBSCRIBE if first else UNSUBSCRIBE
    before = fleet.received(endpoint)
    started = time.time()
    fleet.consent(code, "email", first)
    result = fleet.poller().run_once()["customer"]  # no waiting for the fleet: the job is to be in flight
    assert not result.aborted, result
    wait_for(lambda: fleet.received(endpoint) > before, 30, interval=0.05, message="the first job in flight")
    fleet.consent(code, "email", then)
    fleet.poll()  # until the fleet is idle: the second change sent and both jobs read back applied
    return started


def test_a_subscribe_then_an_unsubscribe_in_flight_together_end_unsubscribed(
    fleet: CustomerFleet, reordering: None,
) -> None:
    code = customer(fleet, "in.flight.1@example.com")
    started = change_while_the_first_is_in_flight(fleet, code, first=True, then=False)
    complete_jobs(fleet)
    assert marketing(fleet.wait_profile(code), "email") == "UNSUBSCRIBED", "the last ERP state is the opt-out"
    (sub, unsub) = consent_jobs_since(fleet, started)
    assert (sub[0], unsub[0]) == ("subscribe", "unsubscribe")
    assert sub[2] is not None and unsub[1] >= sub[2], "the unsubscribe was sent only once the subscribe applied"
    print(f"\nunsubscribe accepted {unsub[1] - sub[1]:.2f} s after the subscribe, "
          f"{unsub[1] - sub[2]:.2f} s after Klaviyo applied it (jobs held {HELD} s)")
    assert fleet.dead_letters() == 0 and not fleet.exceptions.list(type="consent_unconfirmed")


def test_an_unsubscribe_then_a_subscribe_in_flight_together_end_subscribed(
    fleet: CustomerFleet, reordering: None,
) -> None:
    code = customer(fleet, "in.flight.2@example.com", email_optin="Y")
    complete_jobs(fleet)
    fleet.wait_idle()
    assert marketing(fleet.wait_profile(code), "email") == "SUBSCRIBED"
    started = change_while_the_first_is_in_flight(fleet, code, first=False, then=True)
    complete_jobs(fleet)
    assert marketing(fleet.wait_profile(code), "email") == "SUBSCRIBED", "the last ERP state is the opt-in"
    (unsub, sub) = consent_jobs_since(fleet, started)
    assert (unsub[0], sub[0]) == ("unsubscribe", "subscribe")
    assert unsub[2] is not None and sub[1] >= unsub[2], "the subscribe was sent only once the unsubscribe applied"
    print(f"\nsubscribe accepted {sub[1] - unsub[1]:.2f} s after the unsubscribe, "
          f"{sub[1] - unsub[2]:.2f} s after Klaviyo applied it (jobs held {HELD} s)")
    assert fleet.dead_letters() == 0 and not fleet.exceptions.list(type="consent_unconfirmed")


def test_a_job_not_seen_applied_within_the_bound_raises_the_exception_and_the_latest_state_goes_again(
    fleet: CustomerFleet,
) -> None:
    code = customer(fleet, "in.flight.3@example.com", email_optin="Y")
    fleet.wait_profile(code, lambda p: marketing(p, "email") == "SUBSCRIBED", "the first subscribe")
    key = f"consent:email:{code}"
    before = fleet.received(UNSUBSCRIBE)
    faults(fleet, consent_job_delay_seconds=300)  # Klaviyo holds the opt-out's job far beyond the bound
    try:
        sent = time.time()
        fleet.consent(code, "email", False)
        fleet.poller().run_once()
        wait_for(lambda: fleet.exceptions.get("consent_unconfirmed", key), BOUND + 30,
                 message="the consent_unconfirmed exception")
        waited = time.time() - sent
        record = fleet.exceptions.get("consent_unconfirmed", key)
        assert record is not None and record.owner == "operations" and record.details["customer"] == code
        assert record.details["sent_again"] is True and record.details["action"] == "unsubscribe"
        wait_for(lambda: fleet.received(UNSUBSCRIBE) == before + 2, 30, message="the opt-out sent again")
        assert marketing(fleet.wait_profile(code), "email") == "SUBSCRIBED", "Klaviyo still holds both jobs"
    finally:
        faults(fleet, consent_job_delay_seconds=0)  # Klaviyo catches up: the jobs apply
    fleet.wait_idle()
    assert marketing(fleet.wait_profile(code), "email") == "UNSUBSCRIBED"
    entry = fleet.redis.get(f"{fleet.prefix}:ledger:{key}")
    assert entry is not None and '~again"' in entry, "the ledger holds the change sent again"
    print(f"\nconsent_unconfirmed raised {waited:.1f} s after the opt-out (bound {BOUND:.0f} s)")
    assert fleet.dead_letters() == 0
