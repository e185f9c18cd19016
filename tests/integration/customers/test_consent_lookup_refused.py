"""Klaviyo refusing the consent guard's lookup (a 403 after the API key lost a scope) fails only the changes
that needed it: another customer's unsubscribe on the same page still reaches Klaviyo, the failing change is
dead-lettered (never acknowledged away), and `bcsync dlq requeue` delivers it once the key is fixed."""

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
        (entry,) = fleet_dead_letters(fleet)
        assert entry.task == "bcsync.handle_customer_changes" and entry.lane == "fast"
        assert entry.args and [e["record"]["customer"] for e in entry.args[0]] == [new]
        assert entry.attempts[-1].status == 403
        assert any(k.endswith("/consent_lookup_refused") for k in fleet.exceptions.counts()), "operators are told"
        p = fleet.profile(new)
        assert p is None or marketing(p, "email") != "SUBSCRIBED"
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
