"""Customers -> profiles and consent: validation, field policy, consent rules, the guard, the 409 rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from config.mapping import Consent, Mapping
from sync.changes import ChangeEvent, classify
from sync.customers.duplicates import resolve_duplicate_profile
from sync.customers.planner import plan_customer_changes, plan_daily_batch
from sync.customers.records import parse_customer
from sync.fingerprints import StoredFingerprint
from tests.integration.poller.test_changes import customer

MAPPING = Mapping(consent=Consent(email_list_id="LEMAIL", sms_list_id="LSMS"))


def events_for(before: dict[str, Any] | None, after: dict[str, Any]) -> list[ChangeEvent]:
    previous = None
    if before is not None:
        first = classify(None, before, "customer", MAPPING)
        assert first is not None
        previous = StoredFingerprint.decode(first.state)
    event = classify(previous, after, "customer", MAPPING)
    return [] if event is None else [event]


def no_klaviyo_profiles(emails: list[str]) -> dict[str, dict[str, Any]]:
    return {}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"email": ""}, "email is missing"),
        ({"email": "ann at example.com"}, "not a valid address"),
        ({"status": "Z"}, "unknown status"),
        ({"created": "2026-02-30 25:61:00"}, "not a valid date"),
        ({"name": "RenÃ©e\ufffd"}, "replacement character"),
        ({"last_name": "LeeÃ©"}, "mojibake"),
        ({"first_name": "A\x00nn"}, "control characters"),
        ({"first_name": "X" * 70000}, "characters long"),
    ],
)
def test_malformed_customers_are_refused_with_a_reason(overrides: dict[str, Any], expected: str) -> None:
    parsed = parse_customer(customer(**overrides), MAPPING)
    assert parsed.customer is None and expected in "; ".join(parsed.problems)


@pytest.mark.parametrize(
    ("overrides", "misfits"),
    [
        ({"status": "Z"}, [("unknown_status", "customer.status=Z", "Z")]),
        ({"created": "28.12.2031", "email_optin_date": "12/28/2031"},
         [("unparseable_date", "customer.created", "28.12.2031"),
          ("unparseable_date", "customer.email_optin_date", "12/28/2031")]),
        ({"email": ""}, []),  # a record's own problem, no mapping's
        ({"created": "2026-01-02 10:00:00", "email_optin_date": "0201-01-01"}, []),  # read, only too early
    ],
)
def test_the_mapping_problems_behind_an_invalid_customer_are_named(overrides: dict[str, Any],
                                                                   misfits: list[tuple[str, str, str]]) -> None:
    parsed = parse_customer(customer(**overrides), MAPPING)
    assert parsed.customer is None
    assert [(m.type, m.key, m.example["value"]) for m in parsed.misfits] == misfits
    assert all(m.example["record"] == "customer:C1" for m in parsed.misfits)


def test_an_unusable_phone_is_left_out_and_the_customer_still_goes_with_a_warning() -> None:
    plan = plan_customer_changes(events_for(None, customer(phone="call after 5")), MAPPING, no_klaviyo_profiles)
    (profile,) = [op for op in plan.operations if op.kind == "profile_upsert"]
    assert "phone_number" not in profile.payload and profile.payload["email"] == "ann@example.com"
    (problem,) = [p for p in plan.problems if p.type == "unusable_phone"]
    assert problem.severity == "warning" and problem.record_key == "customer:C1" and "call after 5" in problem.reason


def test_emails_are_sent_and_compared_trimmed_and_lower_cased() -> None:
    parsed = parse_customer(customer(email="  Ann.Lee@Example.COM "), MAPPING)
    assert parsed.customer is not None and parsed.customer.email == "ann.lee@example.com"


def test_a_good_customer_becomes_a_full_profile_on_the_fast_lane() -> None:
    plan = plan_customer_changes(events_for(None, customer(name="Renée Lee")), MAPPING, no_klaviyo_profiles)
    [op] = plan.operations
    assert op.kind == "profile_upsert" and op.lane == "fast" and op.key == "profile:C1:full"
    payload = op.payload
    assert payload["external_id"] == "C1" and payload["email"] == "ann@example.com"
    assert payload["phone_number"] == "+12125550100"
    location = {"address1": "1 Main St", "city": "New York", "region": "NY", "zip": "10001"}
    assert payload["location"] == location
    assert payload["properties"]["erp_division"] == "APP" and payload["properties"]["erp_cust_group"] == "DTC"
    assert payload["properties"]["erp_created"] == "2026-01-02"


def test_name_edit_sends_only_immediate_fields_and_never_consent() -> None:
    before = customer(email_optin="Y", email_optin_date="2026-01-01 00:00:00")
    plan = plan_customer_changes(events_for(before, dict(before, first_name="Anne")), MAPPING)
    assert [op.kind for op in plan.operations] == ["profile_upsert"]
    op = plan.operations[0]
    assert op.key == "profile:C1:immediate" and op.lane == "fast"
    assert set(op.payload) == {"external_id", "email", "phone_number", "first_name", "last_name"}
    assert plan.park == []


def test_address_edit_waits_for_the_daily_batch() -> None:
    after = customer()
    after["custaddress"] = {"rows": [dict(after["custaddress"]["rows"][0], city="Boston")]}
    plan = plan_customer_changes(events_for(customer(), after), MAPPING)
    assert plan.operations == [] and [code for code, _, _ in plan.park] == ["C1"]
    batch = plan_daily_batch(plan.park, MAPPING)
    [op] = batch.operations
    assert op.lane == "batch" and op.key == "profile:C1:full" and op.payload["location"]["city"] == "Boston"


def test_consent_on_and_off_for_both_channels_unsubscribes_first() -> None:
    before = customer(email_optin="Y", email_optin_date="2026-01-01 00:00:00")
    after = dict(before, email_optin="N", email_optin_date="2026-03-02 10:00:00",
                 sms_optin="Y", sms_optin_date="2026-03-02 10:00:00")
    plan = plan_customer_changes(events_for(before, after), MAPPING)
    assert [(op.kind, op.payload["channel"]) for op in plan.operations] == [
        ("unsubscribe", "email"), ("subscribe", "sms")]
    unsub, sub = plan.operations
    assert unsub.lane == sub.lane == "fast"
    assert unsub.key == "consent:email:C1" and unsub.payload == {
        "channel": "email", "profile": {"email": "ann@example.com"}, "list_id": "LEMAIL"}
    # no external_id in a subscription job: the profile's Klaviyo id is put in at delivery
    assert sub.payload["profile"] == {"phone_number": "+12125550100"} and sub.profile_of == "C1"
    assert sub.payload["list_id"] == "LSMS" and sub.payload["custom_source"] == "Blue Cherry ERP"
    assert sub.payload["historical_import"] is False and sub.payload["consented_at"] is None


def test_an_older_subscribe_can_never_overtake_a_newer_unsubscribe() -> None:
    """Subscribe and unsubscribe share one ledger key per channel; the later change has the higher version."""
    on = customer(email_optin="Y", email_optin_date="2026-03-02 10:00:00")
    off = dict(on, email_optin="N", email_optin_date="2026-03-02 10:00:05", last_mod="2026-03-02 10:00:05")
    [subscribe] = plan_customer_changes(events_for(customer(), on), MAPPING).operations
    first = classify(None, on, "customer", MAPPING)
    assert first is not None
    second = classify(StoredFingerprint.decode(first.state), off, "customer", MAPPING)
    assert second is not None
    [unsubscribe] = plan_customer_changes([second], MAPPING).operations
    assert subscribe.key == unsubscribe.key and unsubscribe.version > subscribe.version  # type: ignore[operator]


def test_never_subscribe_without_explicit_consent_and_sms_needs_a_phone() -> None:
    plan = plan_customer_changes(events_for(None, customer()), MAPPING, no_klaviyo_profiles)
    assert [op.kind for op in plan.operations] == ["profile_upsert"]
    no_phone = customer(phone="", sms_optin="Y", sms_optin_date="2026-03-02 10:00:00")
    plan = plan_customer_changes(events_for(customer(phone=""), no_phone), MAPPING)
    assert plan.operations == []
    [problem] = plan.problems
    assert problem.type == "invalid_record" and "no valid phone" in problem.reason


def test_first_sync_guard_blocks_a_subscribe_older_than_a_klaviyo_unsubscribe() -> None:
    calls: list[list[str]] = []

    def klaviyo(emails: list[str]) -> dict[str, dict[str, Any]]:
        calls.append(emails)
        return {"ann@example.com": {"email": {"marketing": {
            "consent": "UNSUBSCRIBED", "consent_timestamp": "2026-02-01T00:00:00+00:00"}}}}

    subscribed = customer(email_optin="Y", email_optin_date="2026-01-15 09:00:00")
    plan = plan_customer_changes(events_for(None, subscribed), MAPPING, klaviyo)
    assert [op.kind for op in plan.operations] == ["profile_upsert"]
    [conflict] = plan.problems
    assert conflict.type == "consent_conflict" and "UNSUBSCRIBED" in conflict.reason
    assert calls == [["ann@example.com"]]
    newer = customer(email_optin="Y", email_optin_date="2026-02-15 09:00:00")
    plan = plan_customer_changes(events_for(None, newer), MAPPING, klaviyo)
    assert [op.kind for op in plan.operations] == ["profile_upsert", "subscribe"]


def test_guard_reads_klaviyo_in_batches_of_100() -> None:
    calls: list[int] = []

    def klaviyo(emails: list[str]) -> dict[str, dict[str, Any]]:
        calls.append(len(emails))
        return {}

    events = [e for i in range(250) for e in events_for(None, customer(
        pkey=i, customer=f"C{i}", email=f"c{i}@example.com", email_optin="Y",
        email_optin_date="2026-01-01 00:00:00"))]
    plan = plan_customer_changes(events, MAPPING, klaviyo)
    assert calls == [100, 100, 50]
    assert sum(op.kind == "subscribe" for op in plan.operations) == 250


def test_suppression_newer_than_erp_consent_blocks() -> None:
    def klaviyo(emails: list[str]) -> dict[str, dict[str, Any]]:
        return {"ann@example.com": {"email": {"marketing": {"consent": "SUBSCRIBED", "suppression": [
            {"reason": "HARD_BOUNCE", "timestamp": "2026-03-01T00:00:00Z"}]}}}}

    plan = plan_customer_changes(events_for(None, customer(
        email_optin="Y", email_optin_date="2026-01-15 09:00:00")), MAPPING, klaviyo)
    assert not any(op.kind == "subscribe" for op in plan.operations)
    assert plan.problems[0].type == "consent_conflict"


def test_deleted_customer_requests_erasure() -> None:
    plan = plan_customer_changes(events_for(customer(), customer(delete_flag="Y")), MAPPING)
    [op] = plan.operations
    assert op.kind == "profile_deletion" and op.payload == {"profile": {"email": "ann@example.com"}}
    assert plan.erase == [("C1", "7")]


def test_duplicate_profile_rule_drops_the_phone_once_then_stops() -> None:
    [op] = plan_customer_changes(events_for(None, customer()), MAPPING, no_klaviyo_profiles).operations
    first = resolve_duplicate_profile(op, "01DUP")
    assert first.retry is not None and "phone_number" not in first.retry.payload
    assert first.retry.payload["external_id"] == "C1" and first.retry.payload["email"] == "ann@example.com"
    assert first.details["duplicate_profile_id"] == "01DUP"
    second = resolve_duplicate_profile(first.retry, "01DUP")
    assert second.retry is None and "merge" in second.reason


def test_an_invalid_field_elsewhere_never_holds_an_opt_out_back() -> None:
    on = customer(email_optin="Y", email_optin_date="2026-03-01 10:00:00")
    broken = dict(on, email_optin="N", email_optin_date="2026-03-02 10:00:00", status="Z")  # unknown status
    plan = plan_customer_changes(events_for(on, broken), MAPPING)
    [unsubscribe] = plan.operations
    assert unsubscribe.kind == "unsubscribe" and unsubscribe.payload["profile"] == {"email": "ann@example.com"}
    assert unsubscribe.profile_of == "C1"
    # the record's problem is still reported, and the mapping's behind it (once per status value)
    assert [(p.type, p.record_key) for p in plan.problems] == [("invalid_record", "customer:C1"),
                                                                 ("unknown_status", "customer.status=Z")]


def test_an_sms_opt_out_with_the_phone_blanked_goes_by_the_phone_klaviyo_holds() -> None:
    on = customer(sms_optin="Y", sms_optin_date="2026-03-01 10:00:00")
    off = dict(on, sms_optin="N", sms_optin_date="2026-03-02 10:00:00", phone="")
    plan = plan_customer_changes(events_for(on, off), MAPPING)
    [unsubscribe] = [op for op in plan.operations if op.kind == "unsubscribe"]
    # no address from the ERP: delivery puts in the number Klaviyo holds for C1
    assert unsubscribe.payload["channel"] == "sms" and unsubscribe.payload["profile"] == {}
    assert unsubscribe.profile_of == "C1" and not [p for p in plan.problems if p.type == "invalid_record"]


# --- issue 13: first-sync opt-outs after state loss, the guard apart from the rest of the page ------------------

def klaviyo_subscribed_at(stamp: str) -> Any:
    def klaviyo(emails: list[str]) -> dict[str, dict[str, Any]]:
        return {e: {"email": {"marketing": {"consent": "SUBSCRIBED", "consent_timestamp": stamp}}} for e in emails}
    return klaviyo


def test_first_sync_opt_out_newer_than_klaviyo_s_subscribe_unsubscribes() -> None:
    # state lost while an unsubscribe was queued: the re-scan sees "not subscribed" with the opt-out's date
    opted_out = customer(email_optin="N", email_optin_date="2026-03-02 09:00:00")
    plan = plan_customer_changes(events_for(None, opted_out), MAPPING, klaviyo_subscribed_at("2026-02-01T00:00:00Z"))
    assert [op.kind for op in plan.operations] == ["unsubscribe", "profile_upsert"]
    assert plan.problems == []


@pytest.mark.parametrize("erp_date", ["", "2026-01-15 09:00:00"])
def test_first_sync_not_subscribed_leaves_a_newer_or_undated_klaviyo_subscribe_and_tells_ecommerce(
    erp_date: str,
) -> None:
    record = customer(email_optin="N", email_optin_date=erp_date)
    plan = plan_customer_changes(events_for(None, record), MAPPING, klaviyo_subscribed_at("2026-02-01T00:00:00Z"))
    assert [op.kind for op in plan.operations] == ["profile_upsert"]
    [conflict] = plan.problems
    assert conflict.type == "consent_conflict" and conflict.record_key == "customer:C1"
    assert "SUBSCRIBED in Klaviyo" in conflict.reason and MAPPING.owners.consent_conflict == "ecommerce"


def test_first_sync_not_subscribed_and_klaviyo_not_subscribed_sends_nothing() -> None:
    plan = plan_customer_changes(events_for(None, customer(email_optin_date="2026-03-02 09:00:00")), MAPPING,
                                 no_klaviyo_profiles)
    assert [op.kind for op in plan.operations] == ["profile_upsert"] and plan.problems == []


def test_without_a_lookup_the_guarded_consent_is_left_apart_and_the_page_s_opt_out_is_planned() -> None:
    known = customer(customer="K1", pkey=1, email="k1@example.com", email_optin="Y",
                     email_optin_date="2026-01-01 00:00:00")
    [opt_out] = events_for(known, dict(known, email_optin="N", email_optin_date="2026-03-02 09:00:00"))
    [new] = events_for(None, customer(customer="N1", pkey=2, email="n1@example.com", email_optin="Y",
                                      email_optin_date="2026-03-02 09:00:00"))
    plan = plan_customer_changes([new, opt_out], MAPPING)
    assert [(op.kind, op.record) for op in plan.operations] == [
        ("unsubscribe", "customer:K1"), ("profile_upsert", "customer:N1")]
    # the new customer's consent on both channels waits for the guard (SMS: "not subscribed" is checked too)
    assert [(g.intent.channel, g.intent.action, g.intent.customer.code, g.event) for g in plan.guarded] == [
        ("email", "subscribe", "N1", new), ("sms", "unsubscribe", "N1", new)]


def test_a_customer_the_fleet_holds_nothing_of_and_changed_long_ago_is_resynced_on_the_batch_lane() -> None:
    read_at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    old = classify(None, customer(last_mod="2026-03-02 10:00:00"), "customer", MAPPING, read_at, 24 * 3600)
    new = classify(None, customer(last_mod="2026-03-10 06:30:00"), "customer", MAPPING, read_at, 24 * 3600)
    assert old is not None and (old.kind, old.lane) == ("resynced", "batch")
    assert new is not None and (new.kind, new.lane) == ("created", "fast")
    plan = plan_customer_changes([old], MAPPING, no_klaviyo_profiles)
    assert [(op.kind, op.lane) for op in plan.operations] == [("profile_upsert", "batch")]
    opted_in = classify(None, customer(email_optin="Y", email_optin_date="2026-01-01 00:00:00"), "customer",
                        MAPPING, read_at, 24 * 3600)
    assert opted_in is not None
    plan = plan_customer_changes([opted_in], MAPPING, no_klaviyo_profiles)
    assert [(op.kind, op.lane) for op in plan.operations] == [("profile_upsert", "batch"), ("subscribe", "batch")]
