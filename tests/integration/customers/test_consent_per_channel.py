"""Consent is validated per channel (issue 13): an unusable phone never holds an opt-out back, and an SMS
opt-out made together with blanking the phone unsubscribes the number Klaviyo holds. Real poller, real
fast/batch workers at concurrency 2, both sandboxes."""

from __future__ import annotations

import pytest

from tests.integration.customers.conftest import CustomerFleet, marketing

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
