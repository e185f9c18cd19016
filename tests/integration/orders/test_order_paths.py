"""The order lifecycle end to end: Blue Cherry sandbox operations -> poller -> real workers on real Redis ->
the Klaviyo sandbox, on every tenant dialect, each read with its own mapping file alone (issue 16). The tenant
mapping turns on the storefront-reference option (`web_ref` = SHOP#<n>)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.orders.conftest import OrderFleet
from tests.support.fleet import ROOT, both_dialects

pytestmark = [pytest.mark.integration, both_dialects]

PLACED, ORDERED, UPDATED = "Placed Order", "Ordered Product", "Updated Order"
FULFILLED, CANCELLED, REFUNDED = "Fulfilled Order", "Cancelled Order", "Refunded Order"


def shop_ref(number: str) -> str:
    return f"SHOP#{number}"


def test_entered_confirmed_amended_shipped_invoiced_and_two_credit_memos(order_fleet: OrderFleet) -> None:
    f = order_fleet
    customer = f.new_customer()
    a, b = f.upcs[0], f.upcs[1]
    order = f.new_order(customer=customer, lines=[{"upc": a, "qty": 2, "price": 40}, {"upc": b, "qty": 1,
                                                                                        "price": 25}])
    f.poll()
    assert f.events(order) == {}, "an entered order must send nothing"

    f.apply({"op": "confirm", "ord_num": order})
    f.poll()
    ref = shop_ref(order)
    assert f.unique_ids(order) == {PLACED: [ref], ORDERED: [f"{order}:1", f"{order}:2"]}
    placed = f.events(order)[PLACED][0]
    assert placed["backfill"] is False and placed["properties"]["OrderId"] == ref

    f.apply({"op": "amend", "ord_num": order, "lines": [{"line_seq": 1, "qty": 3}]})
    f.poll()
    (updated,) = f.events(order)[UPDATED]
    assert updated["properties"]["LinesChanged"][0]["NewQuantity"] == 3
    assert updated["properties"]["PreviousValue"] == placed["value"]

    f.apply({"op": "ship", "ord_num": order, "lines": [{"line_seq": 1, "qty": 2}], "invoice": False})
    f.poll()
    (first,) = f.events(order)[FULFILLED]
    assert first["properties"]["Partial"] is True and first["properties"]["ItemsShipped"] == 2

    f.apply({"op": "ship", "ord_num": order, "invoice": False})
    f.poll()
    shipped = f.events(order)[FULFILLED]
    assert [e["properties"]["Partial"] for e in shipped] == [True, False]
    picks = [e["properties"]["DispatchDocument"] for e in shipped]

    for pick in picks:
        f.apply({"op": "invoice", "pick_num": pick})
    f.poll()
    assert len(f.events(order)[FULFILLED]) == 2, "an invoice after a shipped pick is no second fulfilment"

    invoice = next(t["record"]["inv_num"] for t in f.apply({"op": "credit_memo", "inv_num": f.invoice_of(picks[0]),
                                                            "amount": 10.0})
                   if t["resource"] == "creditmemo")
    f.apply({"op": "credit_memo", "inv_num": f.invoice_of(picks[0]), "amount": 5.0})
    f.poll()
    assert invoice
    refunds = sorted(f.events(order)[REFUNDED], key=lambda e: e["time"])
    assert [e["value"] for e in refunds] == [10.0, 5.0]
    # both memos are read in one cycle and computed by two workers at once: the order-level id goes to the
    # earliest memo known when the order's first refund is computed, the other memo to its own id
    assert sorted(e["unique_id"] == ref for e in refunds) == [False, True]
    assert all(e["unique_id"] in (ref, f"{order}:refund:{e['properties']['CreditMemo']}") for e in refunds)

    ids = f.unique_ids(order)
    assert {m: len(v) for m, v in ids.items()} == {PLACED: 1, ORDERED: 2, UPDATED: 1, FULFILLED: 2, REFUNDED: 2}
    profile = f.profile(external_id=customer)
    gross = updated["value"]
    assert profile["properties"]["erp_order_count"] == 1
    assert profile["properties"]["erp_gross_revenue"] == gross
    assert profile["properties"]["erp_refunds"] == 15.0
    assert profile["properties"]["erp_net_lifetime_value"] == round(gross - 15.0, 2)
    assert f.dead_letters() == 0


def test_cancellations_filters_and_the_catch_all_account(order_fleet: OrderFleet) -> None:
    f = order_fleet
    customer = f.new_customer()
    upc = f.upcs[0]
    never_confirmed = f.new_order(customer=customer, lines=[{"upc": upc, "qty": 1}])
    confirmed = f.new_order(customer=customer, lines=[{"upc": upc, "qty": 1}], confirm=True)
    wholesale = f.new_order(customer=customer, ord_type="WHL", lines=[{"upc": upc, "qty": 6}], confirm=True)
    guest = f.new_order(email="Shopper.One@Example.com", lines=[{"upc": upc, "qty": 1}], confirm=True)
    f.poll()
    assert f.unique_ids(confirmed)[PLACED] == [shop_ref(confirmed)]
    assert f.events(wholesale) == {} and f.events(never_confirmed) == {}

    f.apply({"op": "cancel", "ord_num": never_confirmed}, {"op": "cancel", "ord_num": confirmed})
    f.poll()
    assert f.events(never_confirmed) == {}, "entered -> cancelled sends nothing"
    (cancelled,) = f.events(confirmed)[CANCELLED]
    assert cancelled["unique_id"] == shop_ref(confirmed), "the cancellation carries the storefront reference"
    assert f.events(wholesale) == {}

    guest_placed = f.events(guest)[PLACED][0]
    shopper = f.profile(email="shopper.one@example.com")
    assert guest_placed["profile_id"] == shopper["id"] and shopper.get("external_id") in (None, "")
    assert shopper["properties"]["erp_order_count"] == 1
    # the catch-all account itself never becomes a profile
    assert all(p.get("external_id") != "WEBGUEST" for p in f.klaviyo_state()["profiles"].values())
    owner = f.profile(external_id=customer)["properties"]
    assert owner["erp_order_count"] == 0, "cancelled, unconfirmed and wholesale orders do not count"


def test_confirmed_then_a_line_cancelled_then_shipped(order_fleet: OrderFleet) -> None:
    f = order_fleet
    customer = f.new_customer()
    a, b = f.upcs[0], f.upcs[1]
    order = f.new_order(customer=customer, lines=[{"upc": a, "qty": 2, "price": 40}, {"upc": b, "qty": 1,
                                                                                        "price": 25}],
                        confirm=True)
    f.poll()
    placed = f.events(order)[PLACED][0]

    f.apply({"op": "cancel_line", "ord_num": order, "line_seq": 2})
    f.poll()
    (updated,) = f.events(order)[UPDATED]
    props = updated["properties"]
    assert [line["Line"] for line in props["LinesRemoved"]] == ["2"] and props["LinesChanged"] == []
    assert props["PreviousValue"] == placed["value"] and updated["value"] < placed["value"]
    assert CANCELLED not in f.events(order), "a partial cancellation is an update, not a cancellation"

    f.apply({"op": "ship", "ord_num": order})
    f.poll()
    (fulfilled,) = f.events(order)[FULFILLED]
    shipped = fulfilled["properties"]
    assert shipped["Partial"] is False and shipped["ItemsShipped"] == 2
    assert [item["Quantity"] for item in shipped["Items"]] == [2], "only the line still open ships"

    assert f.unique_ids(order) == {
        PLACED: [shop_ref(order)], ORDERED: [f"{order}:1", f"{order}:2"],
        UPDATED: [updated["unique_id"]], FULFILLED: [fulfilled["unique_id"]],
    }
    assert updated["unique_id"].startswith(f"{order}:updated:")
    aggregates = f.profile(external_id=customer)["properties"]
    assert aggregates["erp_order_count"] == 1 and aggregates["erp_gross_revenue"] == updated["value"]
    assert f.dead_letters() == 0


def test_hold_and_release(order_fleet: OrderFleet) -> None:
    f = order_fleet
    customer = f.new_customer()
    upc = f.upcs[0]
    entered = f.new_order(customer=customer, lines=[{"upc": upc, "qty": 1, "price": 30}])
    confirmed = f.new_order(customer=customer, lines=[{"upc": upc, "qty": 1, "price": 50}], confirm=True)
    f.poll()
    before = f.unique_ids(confirmed)
    assert before[PLACED] == [shop_ref(confirmed)]

    f.apply({"op": "hold", "ord_num": entered, "reason": "CREDIT"},
            {"op": "hold", "ord_num": confirmed, "reason": "CREDIT"})
    f.poll()
    assert f.events(entered) == {}, "no events while on hold before confirmation"
    assert f.unique_ids(confirmed) == before, "a hold after confirmation neither cancels nor updates"

    f.apply({"op": "release", "ord_num": entered}, {"op": "release", "ord_num": confirmed})
    f.poll()
    assert f.events(entered) == {}, "released to entered: still not confirmed"
    assert f.unique_ids(confirmed) == before

    f.apply({"op": "confirm", "ord_num": entered})
    f.poll()
    assert f.unique_ids(entered) == {PLACED: [shop_ref(entered)], ORDERED: [f"{entered}:1"]}
    assert f.unique_ids(confirmed) == before
    assert f.profile(external_id=customer)["properties"]["erp_order_count"] == 2
    assert f.dead_letters() == 0


def test_a_rescan_after_lost_state_changes_nothing_in_klaviyo(order_fleet: OrderFleet) -> None:
    f = order_fleet
    customer = f.new_customer()
    upc = f.upcs[0]
    order = f.new_order(customer=customer, lines=[{"upc": upc, "qty": 2, "price": 30}], confirm=True)
    f.poll()
    f.apply({"op": "amend", "ord_num": order, "lines": [{"line_seq": 1, "qty": 1}]})
    f.apply({"op": "ship", "ord_num": order})
    f.poll()
    before = f.klaviyo_state()
    profile_before = f.profile(external_id=customer)["properties"]
    assert before["counts"]["events"] > 0 and UPDATED in f.unique_ids(order)

    # Lose every bit of fleet state (ledger, order state, fingerprints, watermarks), keep the broker.
    fleet_keys = [k for k in f.redis.scan_iter(f"{f.prefix}:*") if not k.startswith(f"{f.prefix}:broker:")]
    f.redis.delete(*fleet_keys)
    f.poll()  # the poller re-scans from its configured start

    after = f.klaviyo_state()
    assert after["counts"]["events"] == before["counts"]["events"], "no event stored twice, none invented"
    assert after["duplicates_suppressed"] > before["duplicates_suppressed"], "the re-scan did resend (deduped)"
    assert f.unique_ids(order) == {m: sorted(e["unique_id"] for e in evs)
                                   for m, evs in _events_of(before, order).items()}
    assert f.profile(external_id=customer)["properties"] == profile_before
    assert f.dead_letters() == 0


def _events_of(state: dict, order: str) -> dict[str, list[dict]]:
    return {m: mine for m, evs in state["events"].items()
            if (mine := [e for e in evs if e["properties"].get("ErpOrderNumber") == order])}


def _cli(f: OrderFleet, module: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", f"from {module} import app; app()", *args], cwd=ROOT,
                          env=f.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_backfill_sends_history_with_backfill_true_once_and_audit_shows_the_trail(order_fleet: OrderFleet) -> None:
    f = order_fleet
    customer = f.new_customer()
    upc = f.upcs[0]
    order = f.new_order(customer=customer, lines=[{"upc": upc, "qty": 1, "price": 20}], confirm=True)
    f.apply({"op": "ship", "ord_num": order})
    f.poll_customers()  # the customer's profile first (its events name it by id)
    # the order never polled: only the backfill reads it
    out = _cli(f, "workers.backfill_orders", "orders")
    assert "events queued on the batch lane" in out
    f.wait_idle()
    events = f.events(order)
    assert {m: len(v) for m, v in events.items()} == {PLACED: 1, ORDERED: 1, FULFILLED: 1}
    assert all(e["backfill"] is True for evs in events.values() for e in evs)
    stored = f.klaviyo_state()["counts"]["events"]

    again = _cli(f, "workers.backfill_orders", "orders")  # everything is in the ledger now
    assert " 0 events queued" in again, again
    f.wait_idle()
    assert f.klaviyo_state()["counts"]["events"] == stored

    report = json.loads(_cli(f, "workers.audit", "order", order, "--json"))
    assert {v["key"].split(":")[0] for v in report["versions_seen"]} >= {"order", "pick", "invoice"}
    # each version names its document by the number finance knows (the order number on the order's own)
    assert {v["document"] for v in report["versions_seen"] if v["resource"] == "order"} == {order}
    assert all(v["document"] for v in report["versions_seen"])
    delivered = {e["key"]: e for e in report["delivered"]}
    assert f"event:{PLACED}:{shop_ref(order)}" in delivered
    assert delivered[f"event:{PLACED}:{shop_ref(order)}"]["endpoint"] == "event-bulk-create-jobs"
    assert set(report["computed"]) == set(delivered)
