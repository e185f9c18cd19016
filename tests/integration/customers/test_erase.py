"""Erasure through the whole path: the ERP delete flag and `bcsync erase CUSTOMER` both request Klaviyo's
data-privacy deletion and purge the fleet's state; a re-read of the erased state changes nothing."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from flows.customers import default_context
from state.ledger import Ledger
from tests.integration.customers.conftest import DELETION, CustomerFleet
from tests.support.fleet import wait_for
from workers.erase import erase, erase_customer

pytestmark = pytest.mark.integration


def _with_state(fleet: CustomerFleet, email: str) -> tuple[str, str]:
    """A synced customer with a parked daily change and an exception: state for the erasure to purge."""
    rec = fleet.new_customer(email=email, email_optin="Y")
    code, pkey = rec["customer"], str(rec["pkey"])
    fleet.poll()
    p = fleet.wait_profile(code)
    fleet.edit(code, division="KIDS" if p["properties"]["erp_division"] != "KIDS" else "MENS")
    fleet.poll()
    fleet.exceptions.record("customer_mismatch", f"customer:{code}", "an earlier 409, kept for operators")
    assert fleet.redis.hexists(f"{fleet.prefix}:customers:daily", code)
    assert fleet.redis.hexists(f"{fleet.prefix}:fp:customer", pkey)
    assert Ledger(fleet.redis, fleet.prefix).for_record(f"customer:{code}")
    return code, pkey


def _purged(fleet: CustomerFleet, code: str) -> None:
    assert not fleet.redis.hexists(f"{fleet.prefix}:customers:daily", code)
    trail = [e.key for e in Ledger(fleet.redis, fleet.prefix).for_record(f"customer:{code}")]
    assert all(key.startswith(f"erase:{code}") for key in trail), trail  # only the erasure request itself
    assert [e for e in fleet.exceptions.list(status=None, limit=10**6) if e.record_key == f"customer:{code}"] == []


def test_the_erp_delete_flag_erases_the_profile_and_the_fleets_state(fleet: CustomerFleet) -> None:
    code, _ = _with_state(fleet, "alan.e2e@example.com")
    deletions = fleet.received(DELETION)
    fleet.edit(code, delete_flag="Y")
    fleet.poll()
    fleet.wait_idle()
    wait_for(lambda: fleet.profile(code) is None, 30, message="the profile deleted in Klaviyo")
    assert fleet.received(DELETION) == deletions + 1
    _purged(fleet, code)
    # the flagged record is read again (overlap window): no second deletion, no new profile
    fleet.poll()
    assert fleet.received(DELETION) == deletions + 1 and fleet.profile(code) is None
    assert fleet.dead_letters() == 0


def test_bcsync_erase_erases_and_a_rescan_does_not_bring_the_profile_back(fleet: CustomerFleet) -> None:
    code, pkey = _with_state(fleet, "joan.e2e@example.com")
    cli = typer.Typer()
    cli.command()(erase)
    out = CliRunner().invoke(cli, [code, "--yes"], env=fleet.env)
    assert out.exit_code == 0, out.output
    assert "deletion requested" in out.output and "email=joan.e2e@example.com" in out.output
    assert not fleet.redis.hexists(f"{fleet.prefix}:fp:customer", pkey)
    _purged(fleet, code)
    wait_for(lambda: fleet.profile(code) is None, 30, message="the profile deleted in Klaviyo")
    # the customer is still in the ERP and inside the poller's overlap window: the tombstone keeps it out
    fleet.poll()
    assert fleet.profile(code) is None
    # a later change in the ERP (the truth) brings it back
    fleet.edit(code, first_name="Joanna")
    fleet.poll()
    fleet.wait_profile(code, lambda p: p["first_name"] == "Joanna", "the re-created profile")
    assert fleet.dead_letters() == 0


def test_erasing_a_customer_unknown_to_the_erp_finds_the_profile_by_external_id(fleet: CustomerFleet) -> None:
    rec = fleet.new_customer(email="kay.e2e@example.com")
    code = rec["customer"]
    fleet.poll()
    profile_id = next(pid for pid, p in fleet.state()["profiles"].items() if p.get("external_id") == code)
    result = erase_customer(code, default_context(), None)  # as if Blue Cherry no longer had it
    assert [op.payload for op in result.deletions] == [{"profile": {"id": profile_id}}]
    wait_for(lambda: fleet.profile(code) is None, 30, message="the profile deleted by id")
