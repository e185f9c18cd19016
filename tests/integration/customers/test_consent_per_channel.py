"""Consent is validated per channel (issue 13): an unusable phone never holds an opt-out back, an SMS
opt-out made together with blanking the phone unsubscribes the number Klaviyo holds, and an invalid record
(unknown status, broken address text) still sends its opt-out - the rest of it waits for the fix. Real
poller, real fast/batch workers at concurrency 2, both sandboxes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.customers.conftest import SUBSCRIBE, UNSUBSCRIBE, CustomerFleet, marketing

pytestmark = pytest.mark.integration


def subscribed(fleet: CustomerFleet, code: str, channel: str) -> None:
    fleet.wait_profile(code, lambda p: marketing(p, channel) == "SUBSCRIBED", f"{code} subscribed ({channel})")


def test_an_email_opt_out_goes_while_the_phone_is_unusable(fleet: CustomerFleet) -> None:
    code = fleet.new_customer(email="opt.phone.e2e@example.com", email_optin="Y")["customer"]
    fleet.poll()
    subscribed(fleet, code, "email")
    fleet.apply({"op": "consent", "customer": code, "channel": "email", "optin": False},
                {"op": "edit_customer", "customer": code, "fields": {"phone": "ring the shop"}})
    fleet.poll()
    fleet.wait_profile(code, lambda p: marketing(p, "email") == "UNSUBSCRIBED", "the opt-out")
    fleet.wait_idle()
    assert fleet.exceptions.get("unusable_phone", f"customer:{code}") is not None
    assert fleet.dead_letters() == 0


def test_an_sms_opt_out_with_the_phone_blanked_unsubscribes_the_number_klaviyo_holds(fleet: CustomerFleet) -> None:
    code = fleet.new_customer(email="opt.sms.e2e@example.com", phone="(212) 555-0142", sms_optin="Y")["customer"]
    fleet.poll()
    subscribed(fleet, code, "sms")
    fleet.apply({"op": "consent", "customer": code, "channel": "sms", "optin": False},
                {"op": "edit_customer", "customer": code, "fields": {"phone": ""}})
    fleet.poll()
    p = fleet.wait_profile(code, lambda p: marketing(p, "sms") == "UNSUBSCRIBED", "the SMS opt-out")
    fleet.wait_idle()
    assert p["phone_number"] == "+12125550142"  # the blanked phone is cleared only by the profile upsert later
    assert fleet.dead_letters() == 0


def subscribed_city(fleet: CustomerFleet, code: str) -> str:
    """Wait for the first sync's subscribe; the city Klaviyo holds for the customer."""
    subscribed(fleet, code, "email")
    p = fleet.profile(code)
    assert p is not None and p["location"]["city"]
    return str(p["location"]["city"])


def opted_out_while_invalid(fleet: CustomerFleet, code: str, *edit: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Apply the edits that break the record together with an email opt-out, poll, and wait for the opt-out
    to reach Klaviyo; returns the profile then and the reason of the record's `invalid_record` exception."""
    fleet.apply({"op": "consent", "customer": code, "channel": "email", "optin": False}, *edit)
    fleet.poll()
    p = fleet.wait_profile(code, lambda p: marketing(p, "email") == "UNSUBSCRIBED", "the opt-out of an invalid record")
    fleet.wait_idle()
    invalid = fleet.exceptions.get("invalid_record", f"customer:{code}")
    assert invalid is not None and invalid.owner == "operations"  # the bad data is still someone's to fix
    assert not fleet.redis.hexists(f"{fleet.prefix}:customers:daily", code)  # nothing of it parked
    assert fleet.dead_letters() == 0
    return p, invalid.reason


def test_an_email_opt_out_goes_while_the_status_is_unknown(fleet: CustomerFleet) -> None:
    code = fleet.new_customer(email="opt.status.e2e@example.com", email_optin="Y")["customer"]
    fleet.poll()
    subscribed(fleet, code, "email")
    p, reason = opted_out_while_invalid(fleet, code, {"op": "edit_customer", "customer": code,
                                                      "fields": {"status": "Z"}})
    assert "unknown status" in reason
    assert p["properties"]["erp_status"] == "A"  # the unknown status was not sent


def test_an_email_opt_out_goes_while_the_address_text_is_broken(fleet: CustomerFleet) -> None:
    code = fleet.new_customer(email="opt.address.e2e@example.com", email_optin="Y")["customer"]
    fleet.poll()
    city = subscribed_city(fleet, code)
    p, reason = opted_out_while_invalid(fleet, code, {"op": "edit_customer", "customer": code,
                                                      "bill_to": {"city": "MÃ¼nchen"}})  # UTF-8 read as cp1252
    assert "mojibake" in reason
    assert p["location"]["city"] == city  # the broken text was not sent


def test_once_the_record_is_fixed_its_other_changes_flow_and_the_opt_out_stands(fleet: CustomerFleet) -> None:
    code = fleet.new_customer(email="opt.fixed.e2e@example.com", email_optin="Y", first_name="Ada")["customer"]
    fleet.poll()
    subscribed_city(fleet, code)
    # one edit: the opt-out, a new first name (an immediate field) and a control character in the address
    p, reason = opted_out_while_invalid(fleet, code, {"op": "edit_customer", "customer": code,
                                                      "fields": {"first_name": "Hedwig"},
                                                      "bill_to": {"city": "München\x07"}})
    assert "control characters" in reason
    assert p["first_name"] == "Ada"  # nothing of the invalid record but its consent went
    calls = (fleet.received(SUBSCRIBE), fleet.received(UNSUBSCRIBE))

    fleet.apply({"op": "edit_customer", "customer": code, "bill_to": {"city": "München"}})
    fleet.poll()
    # the change made while the record was invalid flows now (immediate: the fast lane)...
    fleet.wait_profile(code, lambda p: p["first_name"] == "Hedwig", "the first name of the fixed record")
    fleet.wait_idle()
    # ...and the fixed address with the daily batch, like any non-immediate change
    assert fleet.redis.hexists(f"{fleet.prefix}:customers:daily", code)
    fleet.send("bcsync.daily_profile_batch", "batch", force=True)
    p = fleet.wait_profile(code, lambda p: p["location"]["city"] == "München", "the fixed address")
    fleet.wait_idle()
    assert marketing(p, "email") == "UNSUBSCRIBED"  # as the ERP says
    assert (fleet.received(SUBSCRIBE), fleet.received(UNSUBSCRIBE)) == calls  # the consent is not sent again
    assert fleet.dead_letters() == 0

