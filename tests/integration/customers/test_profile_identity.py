"""One Klaviyo profile per customer, and no profile write that reverts a newer one (issue 12): newest wins per
field across the daily batch and immediate upserts, emails in one form, unusable phones left out - through the
real poller and real fast/batch workers at concurrency 2, against the Klaviyo sandbox."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from delivery.envelope import envelope
from sync.operations import Operation
from tests.integration.customers.conftest import CustomerFleet, marketing
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration


def duplicate_profile_answers(fleet: CustomerFleet) -> int:
    return sum(int(e.get("statuses", {}).get("409", 0)) for e in fleet.stats()["endpoints"].values())


def profiles_of(fleet: CustomerFleet, code: str) -> list[dict[str, Any]]:
    return [p for p in fleet.state()["profiles"].values() if p.get("external_id") == code]


def set_invalid_phone_mode(fleet: CustomerFleet, mode: str) -> None:
    httpx.post(f"{fleet.klaviyo_url}/_sandbox/faults", json={"invalid_phone": mode}, timeout=10).raise_for_status()


def test_the_daily_batch_never_reverts_a_newer_immediate_edit(fleet: CustomerFleet) -> None:
    code = fleet.new_customer(email="mary.e2e@example.com", first_name="Mary", last_name="Shelley")["customer"]
    fleet.poll()
    first = fleet.wait_profile(code, message="the new customer's profile")
    new_division = "KIDS" if first["properties"]["erp_division"] != "KIDS" else "MENS"
    before = duplicate_profile_answers(fleet)

    fleet.edit(code, division=new_division)  # version 2: parked for the daily batch with the whole record
    fleet.poll()
    fleet.edit(code, email="mary.godwin.e2e@example.com", last_name="Godwin")  # version 3: sent now
    fleet.poll()
    fleet.wait_profile(code, lambda p: p["last_name"] == "Godwin", "the immediate edit")
    assert fleet.redis.hexists(f"{fleet.prefix}:customers:daily", code)  # the version-2 record waits

    fleet.send("bcsync.daily_profile_batch", "batch", force=True)
    p = fleet.wait_profile(code, lambda p: p["properties"].get("erp_division") == new_division, "the daily batch")
    fleet.wait_idle()
    p = fleet.profile(code) or p
    # the version-2 record's division arrives; its older email and last name do not
    assert (p["email"], p["last_name"]) == ("mary.godwin.e2e@example.com", "Godwin")
    assert len(profiles_of(fleet, code)) == 1
    assert duplicate_profile_answers(fleet) == before and fleet.dead_letters() == 0


def test_upper_case_emails_name_one_lower_case_profile(fleet: CustomerFleet) -> None:
    code = fleet.new_customer(email="  Percy.Shelley.E2E@Example.COM ", email_optin="Y")["customer"]
    fleet.poll()
    p = fleet.wait_profile(code, lambda p: marketing(p, "email") == "SUBSCRIBED", "subscribed by its own profile")
    fleet.wait_idle()
    assert p["email"] == "percy.shelley.e2e@example.com"
    everyone = fleet.state()["profiles"].values()
    assert [q["id"] for q in everyone if (q.get("email") or "").lower() == p["email"]] == [p["id"]]

    fleet.edit(code, first_name="Percy")  # an immediate edit finds the same profile
    fleet.poll()
    fleet.wait_profile(code, lambda p: p.get("first_name") == "Percy", "the edit")
    fleet.consent(code, "email", False)  # and so does the unsubscribe, by the email Klaviyo holds
    fleet.poll()
    fleet.wait_profile(code, lambda p: marketing(p, "email") == "UNSUBSCRIBED", "the unsubscribe")
    assert len(profiles_of(fleet, code)) == 1 and fleet.dead_letters() == 0


@pytest.mark.parametrize("mode", ["refuse", "drop"])
def test_an_unusable_phone_is_left_out_and_reported(fleet: CustomerFleet, mode: str) -> None:
    set_invalid_phone_mode(fleet, mode)
    try:
        # from the ERP: a phone that is no number at all never reaches Klaviyo; everything else does
        code = fleet.new_customer(email=f"byron.{mode}.e2e@example.com", phone="ask the shop", sms_optin="Y")[
            "customer"]
        fleet.poll()
        p = fleet.wait_profile(code, message="the profile without its phone")
        fleet.wait_idle()
        assert p.get("phone_number") is None and p["email"] == f"byron.{mode}.e2e@example.com"
        problem = fleet.exceptions.get("unusable_phone", f"customer:{code}")
        assert problem is not None and "ask the shop" in problem.reason
        assert fleet.dead_letters() == 0

        # a number Klaviyo cannot validate, sent as a fleet would whose check is laxer than Klaviyo's
        other = f"Z{mode.upper()}"
        op = Operation(kind="profile_upsert", key=f"profile:{other}:full", lane="fast",
                       payload={"external_id": other, "email": f"{other.lower()}.e2e@example.com",
                                "phone_number": "+12005550100"},
                       version="2026-03-02T10:00:00Z#000001", record=f"customer:{other}")
        fleet.send("bcsync.deliver.profile_upsert", "fast", envelope([op], "fast"))
        fleet.wait_idle()
        if mode == "drop":  # accepted without the phone, said in the header: an exception, not a dead letter
            (q,) = profiles_of(fleet, other)
            assert q.get("phone_number") is None
            reported = wait_for(lambda: fleet.exceptions.get("klaviyo_partial_failure", f"customer:{other}"), 10)
            assert "phone" in reported.reason
            assert fleet.dead_letters() == 0
        else:  # refused: dead-lettered with Klaviyo's error on the phone, nothing created
            assert profiles_of(fleet, other) == []
            (entry,) = [e for lane in ("fast",) for e in _dead_letters(fleet, lane)]
            assert "phone_number" in str(entry)
            fleet.redis.delete(f"{fleet.prefix}:dlq:fast")
    finally:
        set_invalid_phone_mode(fleet, "refuse")


def _dead_letters(fleet: CustomerFleet, lane: str) -> list[str]:
    ids = fleet.redis.zrange(f"{fleet.prefix}:dlq:{lane}", 0, -1)
    return [str(fleet.redis.get(f"{fleet.prefix}:dlq-entry:{i}")) for i in ids]
