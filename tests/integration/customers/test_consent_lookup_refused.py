"""The consent guard's read of Klaviyo holds back only the first-sync consent that needs it (issue 13, item 1):
- refused (a 403 after the API key lost a scope): another customer's unsubscribe on the same page and the new
  customer's profile still reach Klaviyo; the new customer's consent is dead-lettered (never acknowledged
  away) and `bcsync dlq requeue` delivers it once the key is fixed;
- throttled (429 on every read): the page's unsubscribe and the new profile arrive while the reads are still
  refused; the subscribe arrives once Klaviyo answers again."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from state.dead_letters import DeadLetter, DeadLetters
from tests.integration.customers.conftest import CustomerFleet, marketing
from tests.support.fleet import wait_for
from workers.cli import app as cli

pytestmark = pytest.mark.integration
LOOKUP = "GET /api/profiles"


def _faults(fleet: CustomerFleet, **settings: object) -> None:
    httpx.post(f"{fleet.klaviyo_url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()


def test_a_refused_consent_lookup_dead_letters_its_change_and_the_page_s_unsubscribe_still_arrives(
    fleet: CustomerFleet,
) -> None:
    known = fleet.new_customer(email="known.403@example.com", email_optin="Y")["customer"]
    fleet.poll()
    fleet.wait_profile(known, lambda p: marketing(p, "email") == "SUBSCRIBED", "the known customer's subscribe")

    _faults(fleet, reject_rules=[{"endpoint": LOOKUP, "status": 403, "code": "permission_denied",
                                  "detail": "The API key lacks the profiles:read scope."}])
    try:
        new = fleet.new_customer(email="new.403@example.com", email_optin="Y")["customer"]
        fleet.consent(known, "email", False)  # same page: an unsubscribe needs no lookup
        fleet.poll()
        fleet.wait_profile(known, lambda p: marketing(p, "email") == "UNSUBSCRIBED", "the page's unsubscribe")
        fleet.wait_profile(new, bool, "the new customer's profile: it needs no consent read")
        (entry,) = fleet_dead_letters(fleet)
        assert entry.task == "bcsync.customers.guard_consent" and entry.lane == "fast"
        assert entry.args and [e["record"]["customer"] for e in entry.args[0]] == [new]
        assert entry.attempts[-1].status == 403
        assert any(k.endswith("/consent_lookup_refused") for k in fleet.exceptions.counts()), "operators are told"
        p = fleet.profile(new)
        assert p is not None and marketing(p, "email") != "SUBSCRIBED"
    finally:
        _faults(fleet, reject_rules=[])

    result = CliRunner().invoke(cli, ["dlq", "requeue", entry.id])
    assert result.exit_code == 0, result.output
    fleet.wait_profile(new, lambda p: marketing(p, "email") == "SUBSCRIBED", "the requeued subscribe")
    fleet.wait_idle()
    assert fleet.dead_letters() == 0


def fleet_dead_letters(fleet: CustomerFleet) -> list[DeadLetter]:
    dlq = DeadLetters(fleet.redis, fleet.prefix)
    return list(wait_for(lambda: dlq.list("fast"), 30, message="the refused change's dead letter"))  # type: ignore[call-overload]


def test_a_throttled_consent_lookup_delays_only_the_subscribe_that_needs_it(fleet: CustomerFleet) -> None:
    known = fleet.new_customer(email="known.429@example.com", email_optin="Y")["customer"]
    fleet.poll()
    fleet.wait_profile(known, lambda p: marketing(p, "email") == "SUBSCRIBED", "the known customer's subscribe")
    fleet.wait_idle()

    _faults(fleet, throttle_rate=1.0, throttle_retry_after=5, endpoints=[LOOKUP])
    try:
        new = fleet.new_customer(email="new.429@example.com", email_optin="Y")["customer"]
        fleet.consent(known, "email", False)
        assert fleet.poller().run_once()["customer"].emitted == 2  # one page; not idle while the guard waits
        fleet.wait_profile(known, lambda p: marketing(p, "email") == "UNSUBSCRIBED", "the page's unsubscribe")
        fleet.wait_profile(new, bool, "the new customer's profile")
        assert marketing(fleet.profile(new) or {}, "email") != "SUBSCRIBED"  # its guard is still throttled
        assert fleet.stats()["endpoints"][LOOKUP]["throttled"] > 0, "the lookup really was throttled"
    finally:
        _faults(fleet, throttle_rate=0.0, endpoints=None)
    fleet.wait_profile(new, lambda p: marketing(p, "email") == "SUBSCRIBED", "the subscribe, once Klaviyo answers")
    fleet.wait_idle()
    assert fleet.dead_letters() == 0
