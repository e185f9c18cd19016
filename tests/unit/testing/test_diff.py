"""diff_state: a state rendered from the expectation diffs to zero; planted differences are found exactly."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from testing.oracle import KINDS, ExpectedState, TenantRules, diff_state, expected_state
from tests.unit.testing.tenant import customer, dump, line, memo, order, pick, render, stock, style


def tenant() -> dict[str, Any]:
    return dump(
        customer=[customer("C1", "ada@example.com", "6172531000", email_optin="Y", sms_optin="Y"),
                  customer("C2", "bob@example.com"), customer("C3", delete="Y")],
        order=[order("1", "C1", [line(1, 2, 10.0), line(2, 1, 5.0)], tax=1.5),
               order("2", "C2", [line(1, 1, 40.0)]),
               order("3", "WEBGUEST", [line(1, 1, 25.0)], email="guest@x.com"),
               order("4", "C2", [line(1, 1, 8.0)], status="X", confirm="")],
        pick=[pick("P1", "1", [(2, 10.0)])],
        creditmemo=[memo("M1", "1", 10.0), memo("M2", "1", 2.5, "2026-11-13 10:00:00")],
        style=[style(sizes=("S", "M"))],
        inventory=[stock("S", "WH1", 4, 1), stock("M", "WH2", 2, 0)],
    )


def counts_of(expected: ExpectedState, state: dict[str, Any]) -> dict[str, int]:
    return {kind: count for kind, count in diff_state(expected, state).counts().items() if count}


def event(state: dict[str, Any], metric: str, unique_id: str) -> dict[str, Any]:
    return next(e for e in state["events"][metric] if e["unique_id"] == unique_id)


def profile(state: dict[str, Any], external_id: str | None = None, email: str | None = None) -> dict[str, Any]:
    return next(p for p in state["profiles"].values()
                if (external_id and p["external_id"] == external_id) or (email and p["email"] == email))


@pytest.fixture
def expected() -> ExpectedState:
    return expected_state(tenant())


def test_the_rendered_expectation_diffs_to_zero(expected: ExpectedState) -> None:
    diff = diff_state(expected, render(expected))
    assert set(diff.counts()) == set(KINDS) and not any(diff.counts().values()), diff.report()
    assert len(expected.profiles) == 3 and len(expected.events) == 10


def test_planted_differences_are_reported_exactly(expected: ExpectedState) -> None:
    state = render(expected)
    state["events"]["Fulfilled Order"].clear()                                           # a deleted event
    profile(state, "C1")["subscriptions"]["sms"]["marketing"]["consent"] = "UNSUBSCRIBED"  # a flipped consent
    state["catalog"]["variants"]["$custom:::$default:::S100-BLK---S"]["inventory_quantity"] = 7  # wrong stock
    state["profiles"]["PX"] = {"id": "PX", "email": "nobody@x.com", "properties": {}}    # an extra profile
    profile(state, "C2")["email"] = "Bob@example.com"                                    # a wrong email
    profile(state, email="guest@x.com")["properties"]["erp_gross_revenue"] = 26.0        # a wrong aggregate
    diff = diff_state(expected, state)
    assert {k: v for k, v in diff.counts().items() if v} == {
        "events_missing": 1, "consent_wrong": 1, "stock_wrong": 1, "profiles_extra": 1, "profiles_wrong": 1,
        "aggregates_wrong": 1,
    }, diff.report()
    assert {f.key for f in diff.findings} == {
        "event:Fulfilled Order:1:fulfilled:P1", "consent:sms:customer:C1", "variant:S100-BLK---S", "profile:PX",
        "customer:C2", "guest:guest@x.com"}
    report = diff.report(limit_per_kind=1)
    assert "consent_wrong" in report and "variant:S100-BLK---S" in report


def test_split_missing_and_deleted_profiles(expected: ExpectedState) -> None:
    state = render(expected)
    c1 = profile(state, "C1")
    state["profiles"]["PS"] = {"id": "PS", "email": None, "phone_number": c1["phone_number"], "external_id": None,
                               "properties": {}, "subscriptions": c1["subscriptions"]}
    c1["phone_number"] = None
    state["profiles"]["PD"] = {"id": "PD", "external_id": "C3", "email": "c3@example.com"}
    del state["profiles"][profile(state, "C2")["id"]]
    counts = counts_of(expected, state)
    # C2's events now sit on no profile of C2's: each is on the wrong profile
    assert counts == {"profiles_split": 1, "profiles_extra": 1, "profiles_missing": 1, "profiles_wrong": 2}
    extra = next(f for f in diff_state(expected, state).findings if f.kind == "profiles_extra")
    assert "deleted" in extra.detail


def test_consent_is_read_where_the_channel_identifier_lives(expected: ExpectedState) -> None:
    state = render(expected)
    c1 = profile(state, "C1")
    state["profiles"]["PS"] = {"id": "PS", "phone_number": c1["phone_number"], "properties": {},
                               "subscriptions": {"sms": {"marketing": {"consent": "NEVER_SUBSCRIBED"}}}}
    c1["phone_number"] = None  # Klaviyo holds a phone on one profile: SMS consent is the phone's profile's
    assert counts_of(expected, state) == {"profiles_split": 1, "consent_wrong": 1}


def test_duplicates_extras_and_wrong_values(expected: ExpectedState) -> None:
    state = render(expected)
    placed = event(state, "Placed Order", "2")
    state["events"]["Placed Order"].append({**placed, "id": "dup", "profile_id": profile(state, "C1")["id"]})
    state["events"]["Fulfilled Order"][0]["value"] = 20.02
    state["events"].setdefault("Cancelled Order", []).append({**placed, "id": "x", "unique_id": "2"})
    state["events"]["Other Metric"] = [{"id": "o", "unique_id": "zzz", "profile_id": "P0000"}]
    assert counts_of(expected, state) == {"events_duplicated": 1, "events_wrong_value": 1, "events_extra": 1}


def test_updated_orders_are_checked_for_consistency(expected: ExpectedState) -> None:
    state = render(expected)
    owner, owner_2 = event(state, "Placed Order", "1")["profile_id"], event(state, "Placed Order", "2")["profile_id"]
    event(state, "Placed Order", "1")["value"] = 99.0  # placed before an amendment...
    state["events"]["Updated Order"] = [
        {"id": "u1", "profile_id": owner, "unique_id": "1:updated:abc", "time": "2026-11-10T15:00:00+00:00",
         "value": 26.5},  # ...whose new value is the ERP's current one
        {"id": "u2", "profile_id": owner_2, "unique_id": "2:updated:abc", "time": "2026-11-10T15:00:00+00:00",
         "value": 1.0},  # ...and the latest value of order 2 is not the ERP's
        {"id": "u3", "profile_id": owner, "unique_id": "4:updated:abc", "time": "2026-11-10T15:00:00+00:00",
         "value": 1.0},  # an update of an order never placed
    ]
    event(state, "Ordered Product", "1:1")["value"] = 30.0  # once amended, an Ordered Product's value is history
    diff = diff_state(expected, state)
    assert {(f.kind, f.key) for f in diff.findings} == {
        ("events_wrong_value", "event:Updated Order:2:updated:abc"),
        ("events_extra", "event:Updated Order:4:updated:abc"),
    }


def test_a_cancelled_order_repeats_the_last_announced_value() -> None:
    expected = expected_state(dump(customer=[customer("C1")],
                                   order=[order("1", "C1", [line(1, 1, 10.0, cancel=1)], status="X")]))
    state = render(expected)
    assert counts_of(expected, state) == {}
    event(state, "Cancelled Order", "1")["value"] = 0.0
    assert counts_of(expected, state) == {"events_wrong_value": 1}


def test_refunds_each_memo_once_under_one_order_level_id(expected: ExpectedState) -> None:
    state = render(expected)
    first, second = event(state, "Refunded Order", "1"), event(state, "Refunded Order", "1:refund:M2")
    # the pin: the later memo went out first with the order id, the backdated one under its own id - correct
    first["value"], second["unique_id"] = 2.5, "1:refund:M1"
    second["value"] = 10.0
    assert counts_of(expected, state) == {}
    # issue 14's case: the later memo under both ids, the first memo nowhere
    second["unique_id"], second["value"] = "1:refund:M2", 2.5
    diff = diff_state(expected, state)
    assert {(f.kind, f.key) for f in diff.findings} == {
        ("events_duplicated", "creditmemo:M2"), ("events_missing", "event:Refunded Order:1:refund:M1")}


def test_a_refund_value_that_matches_no_memo_and_a_refund_without_memos(expected: ExpectedState) -> None:
    state = render(expected)
    event(state, "Refunded Order", "1")["value"] = 3.0
    state["events"]["Refunded Order"].append({**event(state, "Refunded Order", "1"), "id": "r2", "unique_id": "2"})
    assert counts_of(expected, state) == {"events_wrong_value": 1, "events_extra": 1}


def test_an_identical_copy_with_other_profile_ids_still_diffs_to_zero(expected: ExpectedState) -> None:
    state = render(expected)
    renamed = copy.deepcopy(state)
    ids = {pid: f"K{pid}" for pid in state["profiles"]}
    renamed["profiles"] = {ids[pid]: {**p, "id": ids[pid]} for pid, p in state["profiles"].items()}
    for events in renamed["events"].values():
        for e in events:
            e["profile_id"] = ids[e["profile_id"]]
    assert counts_of(expected, renamed) == {}


# --- storefront orders (docs/rules.md, "Events"; issue 14: storefront_ref_missing) ------------------------------
STOREFRONT = TenantRules(use_storefront_ref=True, storefront_sends_placed=("SHOP",),
                         sales_channels=("WEB", "POS", "SHOP"))


def storefront_tenant() -> dict[str, Any]:
    """A storefront order without its reference, one with it (the storefront sent their Placed Orders), and a
    web order the fleet places."""
    return dump(
        customer=[customer("C1")],
        order=[order("1", "C1", [line(1, 2, 10.0)], channel="SHOP"),
               order("2", "C1", [line(1, 1, 30.0)], channel="SHOP", web_ref="SHOP#2"),
               order("3", "C1", [line(1, 1, 5.0)], web_ref="SHOP#3")],
        pick=[pick("P1", "1", [(2, 10.0)]), pick("P2", "2", [(1, 30.0)])],
        creditmemo=[memo("M1", "1", 4.0), memo("M2", "2", 6.0)],
    )


def test_a_storefront_order_without_its_reference_waits_and_is_not_missing() -> None:
    expected = expected_state(storefront_tenant(), STOREFRONT)
    assert {k for k in expected.events if k[1].split(":")[0] in ("1", "2", "SHOP#2")} == {
        ("Fulfilled Order", "2:fulfilled:P2"), ("Refunded Order", "SHOP#2")}, "nothing of order 1, no Placed of 2"
    assert ("Placed Order", "SHOP#3") in expected.events
    assert expected.profiles["customer:C1"].aggregates["erp_order_count"] == 3, "the ERP's truth counts all three"
    assert expected.profiles["customer:C1"].aggregates["erp_refunds"] == 10.0

    state = render(expected)  # what the rules ask: order 1's events wait, order 2's Placed is the storefront's
    diff = diff_state(expected, state)
    assert not any(diff.counts().values()), diff.report()
    assert [(w.record, w.reason.split(":")[0]) for w in diff.waiting] == [("order:1", "storefront_ref_missing")]
    assert "1 order(s) waiting" in diff.report() and "order:1: storefront_ref_missing" in diff.report()

    owner = event(state, "Placed Order", "SHOP#3")["profile_id"]
    storefronts = {"id": "s1", "profile_id": owner, "unique_id": "SHOP#2", "time": "2026-11-10T14:00:00+00:00",
                   "value": 31.0}  # the storefront's own Placed Order and product event: not judged
    state["events"]["Placed Order"].append(storefronts)
    state["events"]["Ordered Product"].append({**storefronts, "id": "s2", "unique_id": "2:1"})
    assert counts_of(expected, state) == {}

    # order 1's events sent under its ERP number anyway: extra (they match no Placed Order), never "missing"
    sent = {"profile_id": owner, "time": "2026-11-12T15:00:00+00:00"}
    state["events"]["Refunded Order"].append({**sent, "id": "w1", "unique_id": "1", "value": 4.0})
    state["events"]["Fulfilled Order"].append({**sent, "id": "w2", "unique_id": "1:fulfilled:P1", "value": 20.0})
    diff = diff_state(expected, state)
    assert {(f.kind, f.key) for f in diff.findings} == {("events_extra", "event:Refunded Order:1"),
                                                        ("events_extra", "event:Fulfilled Order:1:fulfilled:P1")}
    assert all("waiting for its reference" in f.detail for f in diff.findings)
