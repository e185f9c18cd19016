"""Customers -> Klaviyo profiles and consent through the whole path: Blue Cherry sandbox -> poller -> real
fast/batch workers -> Klaviyo sandbox (issue #4, "Done when"), on every tenant dialect, each read with its own
mapping file alone (issue 16)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.integration.customers.conftest import (
    SUBSCRIBE,
    UNSUBSCRIBE,
    CustomerFleet,
    marketing,
)
from tests.support.fleet import both_dialects, wait_for
from workers.cli import app as cli

pytestmark = [pytest.mark.integration, both_dialects]
CUSTOMER_TASK = "bcsync.handle_customer_changes"


def clean(fleet: CustomerFleet) -> None:
    assert fleet.dead_letters() == 0
    assert fleet.stats()["duplicates_suppressed"] == 0


def test_new_customer_immediate_edit_and_the_daily_batch(fleet: CustomerFleet) -> None:
    rec = fleet.new_customer(email="ada.e2e@example.com", first_name="Ada", last_name="Lovelace")
    code = rec["customer"]
    fleet.poll()
    p = fleet.wait_profile(code, message="the new customer's profile")
    assert (p["email"], p["first_name"], p["last_name"]) == ("ada.e2e@example.com", "Ada", "Lovelace")
    old_division = p["properties"]["erp_division"]

    fleet.edit(code, last_name="Byron")  # immediate field: fast lane
    fleet.poll()
    fleet.wait_profile(code, lambda p: p["last_name"] == "Byron", "the immediate edit")

    new_division = "KIDS" if old_division != "KIDS" else "MENS"
    fleet.edit(code, division=new_division)  # not immediate: parked for the daily batch
    fleet.poll()
    assert fleet.profile(code)["properties"]["erp_division"] == old_division  # type: ignore[index]
    assert fleet.redis.hexists(f"{fleet.prefix}:customers:daily", code)

    fleet.send("bcsync.daily_profile_batch", "batch", force=True)
    fleet.wait_profile(code, lambda p: p["properties"].get("erp_division") == new_division, "the daily batch")
    fleet.wait_idle()
    assert not fleet.redis.hexists(f"{fleet.prefix}:customers:daily", code)
    clean(fleet)


def test_consent_on_and_off_and_an_older_subscribe_never_overtakes(fleet: CustomerFleet) -> None:
    rec = fleet.new_customer(email="grace.e2e@example.com", phone="(212) 736-5000")
    code = rec["customer"]
    fleet.poll()
    p = fleet.wait_profile(code)
    assert marketing(p, "email") != "SUBSCRIBED" and marketing(p, "sms") != "SUBSCRIBED"

    emitted: list[dict[str, Any]] = []
    poller = fleet.poller()
    real_emit = poller.emit

    def recording(events: list[Any]) -> None:
        emitted.extend(e.model_dump(mode="json") for e in events)
        real_emit(events)

    poller.emit = recording
    try:
        fleet.consent(code, "email", True)
        fleet.consent(code, "sms", True)
        fleet.poll()
        fleet.wait_profile(code, lambda p: marketing(p, "email") == marketing(p, "sms") == "SUBSCRIBED",
                           "email and SMS subscribed")
        subscribe_event = [e for e in emitted if fleet.code_of(e["record"]) == code][-1]

        fleet.consent(code, "email", False)
        fleet.consent(code, "sms", False)
        fleet.poll()
        fleet.wait_profile(code, lambda p: marketing(p, "email") == marketing(p, "sms") == "UNSUBSCRIBED",
                           "email and SMS unsubscribed")
    finally:
        poller.emit = real_emit

    # The older subscribe arrives late (a redelivered message): the ledger's newest-wins drops it.
    subscribes_before = fleet.received(SUBSCRIBE)
    fleet.send(CUSTOMER_TASK, "fast", [subscribe_event])
    fleet.wait_idle()
    httpx.post(f"{fleet.klaviyo_url}/_sandbox/complete-jobs", timeout=30).raise_for_status()
    late = fleet.profile(code)
    assert late is not None and marketing(late, "email") == marketing(late, "sms") == "UNSUBSCRIBED"
    assert fleet.received(SUBSCRIBE) == subscribes_before
    clean(fleet)


def test_editing_a_name_sends_no_subscription_call(fleet: CustomerFleet) -> None:
    rec = fleet.new_customer(email="hedy.e2e@example.com", phone="(212) 736-5001", email_optin="Y", sms_optin="Y")
    code = rec["customer"]
    fleet.poll()
    fleet.wait_profile(code, lambda p: marketing(p, "email") == marketing(p, "sms") == "SUBSCRIBED")
    before = (fleet.received(SUBSCRIBE), fleet.received(UNSUBSCRIBE))
    assert before[0] > 0  # the counter counts: the first sync's subscribe is in it

    fleet.edit(code, first_name="Hedwig", name="Hedwig Lamarr")
    fleet.poll()
    fleet.wait_profile(code, lambda p: p["first_name"] == "Hedwig", "the renamed profile")
    fleet.wait_idle()
    assert (fleet.received(SUBSCRIBE), fleet.received(UNSUBSCRIBE)) == before
    clean(fleet)


MALFORMED_KINDS = ["missing_email", "invalid_email", "bad_phone", "impossible_date"]


def test_malformed_customers_become_exceptions_and_the_rest_of_their_pages_arrive(fleet: CustomerFleet) -> None:
    fleet.bc_faults(malformed_rate=0.3, malformed_kinds=MALFORMED_KINDS)
    try:
        touched = fleet.apply({"op": "burst", "resource": "customer", "count": 30})  # 3 pages of 10
        burst = {str(t["record"]["pkey"]): t["record"] for t in touched if t["resource"] == "customer"}
        last_mod = next(iter(burst.values()))["last_mod"]
        result = fleet.poll()
        assert result.pages >= 3
        r = fleet.served(last_mod)
        kinds = dict(pair.split("=", 1) for pair in r.headers.get("X-Sandbox-Malformed", "").split(",") if pair)
    finally:
        fleet.bc_faults(reset=True)
    # a bad phone does not make the record invalid: the customer goes without it, and operations hear of it
    damaged = {pkey for pkey, kind in kinds.items() if kind != "bad_phone"}
    bad_phones = set(kinds) - damaged
    assert damaged and set(kinds) < set(burst), "the fault damaged nothing (or everything): the test proves nothing"

    out = CliRunner().invoke(cli, ["exceptions", "--json", "--type", "invalid_record"], env=fleet.env)
    assert out.exit_code == 0, out.output
    by_pkey = {str(e["details"].get("pkey")): e for e in json.loads(out.stdout)}
    for pkey in damaged:
        exc = by_pkey.get(pkey)
        assert exc is not None, f"no exception for malformed customer pkey {pkey}"
        assert exc["owner"] == "operations" and exc["reason"] and exc["details"]["problems"]
    good = [rec["customer"] for pkey, rec in burst.items() if pkey not in damaged]
    profiles = {p.get("external_id"): p for p in fleet.state()["profiles"].values()}
    assert set(good) <= set(profiles)
    assert not {burst[pkey]["customer"] for pkey in damaged} & set(profiles)
    for pkey in bad_phones:
        code = burst[pkey]["customer"]
        assert profiles[code].get("phone_number") is None
        assert fleet.exceptions.get("unusable_phone", f"customer:{code}") is not None
    clean(fleet)


def test_the_consent_guard_holds_after_redis_is_flushed_and_the_poller_rescans(fleet: CustomerFleet) -> None:
    rec = fleet.new_customer(email="ida.e2e@example.com", email_optin="Y")
    code = rec["customer"]
    fleet.poll()
    fleet.wait_profile(code, lambda p: marketing(p, "email") == "SUBSCRIBED", "the first subscribe")

    fleet.klaviyo_unsubscribe("ida.e2e@example.com")  # in Klaviyo, after the ERP's consent
    fleet.wait_profile(code, lambda p: marketing(p, "email") == "UNSUBSCRIBED", "Klaviyo's own unsubscribe")

    assert fleet.flush_state() > 0
    result = fleet.poll()  # everything is new again: a full re-scan from poll_start
    assert result.emitted >= 1
    fleet.wait_idle()
    httpx.post(f"{fleet.klaviyo_url}/_sandbox/complete-jobs", timeout=30).raise_for_status()
    p = fleet.profile(code)
    assert p is not None and marketing(p, "email") == "UNSUBSCRIBED"
    conflict = wait_for(lambda: fleet.exceptions.get("consent_conflict", f"customer:{code}"), 30,
                        message="the consent_conflict exception")
    assert conflict.owner == "ecommerce" and "UNSUBSCRIBED" in conflict.reason  # type: ignore[attr-defined]
    clean(fleet)
