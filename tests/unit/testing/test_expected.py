"""expected_state: each rule of docs/rules.md on a small hand-built dump."""

from __future__ import annotations

from testing.oracle import TenantRules, expected_state
from tests.unit.testing.tenant import customer, dump, line, memo, order, pick, stock, style


def placed(num: str = "100001") -> tuple[str, str]:
    return ("Placed Order", num)


# --- profiles -------------------------------------------------------------------------------------------------
def test_one_profile_per_customer_with_normalised_identity() -> None:
    state = expected_state(dump(customer=[customer("C1", "  Ada@Example.COM ", "(617) 253-1000", email_optin="Y")]))
    profile = state.profiles["customer:C1"]
    assert (profile.email, profile.external_id, profile.phone_number) == ("ada@example.com", "C1", "+16172531000")
    assert profile.consent == {"email": True, "sms": False}


def test_an_unusable_phone_is_left_out_and_sms_consent_cannot_hold() -> None:
    state = expected_state(dump(customer=[customer("C1", phone="call after 5", sms_optin="Y")]))
    assert state.profiles["customer:C1"].phone_number is None
    assert state.profiles["customer:C1"].consent == {"email": False, "sms": False}


def test_customers_out_of_scope_or_invalid() -> None:
    state = expected_state(dump(customer=[
        customer("C1", delete="Y"), customer("C2", status="Z"), customer("C3", "ada at example.com"),
        customer("WEBGUEST"), customer("C4", status="I"),
    ]))
    assert set(state.profiles) == {"customer:C4"}  # inactive customers keep their profile (erp_status)
    assert {s.record for s in state.skipped} == {"customer:C2", "customer:C3"}
    assert state.deleted_identities["external_id:C1"] == "C1"
    assert "external_id:C2" in state.tolerated_identities


def test_customers_sharing_an_email_are_skipped() -> None:
    state = expected_state(dump(customer=[customer("C1", "a@x.com"), customer("C2", "A@x.com")]))
    assert state.profiles == {} and len(state.skipped) == 2


def test_a_phone_shared_by_two_customers_is_not_checked() -> None:
    state = expected_state(dump(customer=[customer("C1", phone="6172531000"), customer("C2", phone="6172531000")]))
    assert not state.profiles["customer:C1"].check_phone and "phone:+16172531000" in state.tolerated_identities


def test_guest_orders_make_an_email_only_profile_or_go_to_the_customer_with_that_email() -> None:
    orders = [order("1", "WEBGUEST", [line(1, 1, 10.0)], email="Shopper@X.com"),
              order("2", "WEBGUEST", [line(1, 1, 10.0)], email="c1@example.com"),
              order("3", "WEBGUEST", [line(1, 1, 10.0)], email="later@x.com", status="E", confirm="")]
    state = expected_state(dump(customer=[customer("C1")], order=orders))
    guest = state.profiles["guest:shopper@x.com"]
    assert (guest.external_id, guest.phone_number, guest.consent) == (None, None, None)
    assert state.events[placed("2")].owner == "customer:C1"
    assert "guest:later@x.com" not in state.profiles and "email:later@x.com" in state.tolerated_identities


# --- events ---------------------------------------------------------------------------------------------------
def test_a_placed_order_and_its_documents() -> None:
    orders = [order("1", "C1", [line(1, 2, 10.0), line(2, 1, 5.0, cancel=1)], tax=2.0, freight=3.0, discount=1.0)]
    picks = [pick("P1", "1", [(1, 10.0)]), pick("P2", "1", [(1, 10.0)], status="O")]
    memos = [memo("M2", "1", -4.0, "2026-11-12 10:00:00"), memo("M1", "1", 3.0, "2026-11-13 10:00:00")]
    state = expected_state(dump(customer=[customer("C1")], order=orders, pick=picks, creditmemo=memos))
    assert state.events[placed("1")].value == 20 - 1 + 2 + 3
    assert state.events[("Ordered Product", "1:1")].value == 20.0
    assert ("Ordered Product", "1:2") in state.tolerated_events  # fully cancelled line: history decides
    assert state.events[("Fulfilled Order", "1:fulfilled:P1")].value == 10.0
    assert ("Fulfilled Order", "1:fulfilled:P2") not in state.events  # not shipped
    assert state.events[("Refunded Order", "1")].value == 4.0  # the earliest memo carries the order id
    assert state.events[("Refunded Order", "1:refund:M1")].value == 3.0
    assert state.events[placed("1")].time.isoformat() == "2026-11-10T14:00:00+00:00"


def test_value_flags_dispatch_by_invoice_and_storefront_reference() -> None:
    rules = TenantRules(value_includes_tax=False, value_includes_freight=False, dispatch_document="invoice",
                        use_storefront_ref=True)
    orders = [order("1", "C1", [line(1, 1, 10.0)], tax=2.0, freight=3.0, web_ref="SHOP#1")]
    invoices = [{"inv_num": "I1", "ord_num": "1", "inv_date": "2026-11-12 10:00:00",
                 "invoicedetail": {"rows": [{"line_seq": 1, "price": 10.0, "inv_qty": 1}]}}]
    memos = [memo("M1", "1", 5.0), memo("M2", "1", 1.0, "2026-11-14 10:00:00")]
    state = expected_state(dump(customer=[customer("C1")], order=orders, invoice=invoices, creditmemo=memos), rules)
    assert state.events[placed("SHOP#1")].value == 10.0
    assert ("Fulfilled Order", "1:fulfilled:I1") in state.events
    assert {k for k in state.events if k[0] == "Refunded Order"} == {("Refunded Order", "SHOP#1"),
                                                                     ("Refunded Order", "1:refund:M2")}


def test_which_orders_are_placed_and_in_scope() -> None:
    orders = [
        order("1", "C1", [line(1, 1, 10.0)], status="E", confirm=""),
        order("2", "C1", [line(1, 1, 10.0)], status="H", confirm=""),
        order("3", "C1", [line(1, 1, 10.0)], status="H"),
        order("4", "C1", [line(1, 1, 10.0)], status="X", confirm=""),
        order("5", "C1", [line(1, 1, 10.0, cancel=1)], status="X"),
        order("6", "C1", [line(1, 1, 10.0)], ord_type="WHL", channel="EDI"),
        order("7", "C1", [line(1, 1, 10.0)], status="Q"),
        order("8", "C1", [line(1, 1, 10.0)], status="C", confirm=""),
        order("9", "C9", [line(1, 1, 10.0)]),
    ]
    state = expected_state(dump(customer=[customer("C1")], order=orders))
    assert set(state.orders) == {"3", "5", "8"}
    assert state.events[("Cancelled Order", "5")].value == 10.0  # the ordered value: what Klaviyo was told
    assert state.events[placed("5")].value == 10.0
    assert {s.record for s in state.skipped} == {"order:7", "order:9"}
    assert {"7", "9"} <= state.tolerated_orders


def test_invalid_order_records_are_skipped_not_fatal() -> None:
    orders = [order("1", "C1", [line(1, 2, 10.0, cancel=3)]), order("2", "C1", [line(1, 1, "ten")]),
              order("3", "C1", [line(1, 1, 10.0)], confirm="2026-02-30 10:00:00")]
    state = expected_state(dump(customer=[customer("C1")], order=orders))
    assert state.events == {} and len(state.skipped) == 3


# --- aggregates -----------------------------------------------------------------------------------------------
def test_erp_aggregates_over_the_whole_history() -> None:
    orders = [
        order("1", "C1", [line(1, 2, 10.0, cancel=1)], tax=1.0, confirm="2025-01-05 10:00:00"),
        order("2", "C1", [line(1, 1, 30.0)], status="C", confirm="2026-11-01 01:30:00"),
        order("3", "C1", [line(1, 1, 99.0)], status="X"),
        order("4", "C1", [line(1, 1, 50.0)], ord_type="WHL", channel="EDI"),
    ]
    memos = [memo("M1", "1", 5.0), memo("M2", "3", 99.0)]
    state = expected_state(dump(customer=[customer("C1"), customer("C2")], order=orders, creditmemo=memos))
    assert state.profiles["customer:C1"].aggregates == {
        "erp_order_count": 2, "erp_gross_revenue": 41.0, "erp_refunds": 5.0, "erp_net_lifetime_value": 36.0,
        "erp_first_order_date": "2025-01-05T15:00:00+00:00",
        "erp_last_order_date": "2026-11-01T05:30:00+00:00",  # the ambiguous hour: its first occurrence (EDT)
    }
    assert state.profiles["customer:C2"].aggregates["erp_order_count"] == 0


# --- stock ----------------------------------------------------------------------------------------------------
def test_available_to_sell_summed_over_sellable_warehouses_then_floored() -> None:
    inventory = [
        stock("S", "WH1", 5, 2), stock("S", "WH2", -4, 0), stock("S", "QC", 100, 0),
        stock("M", "WH1", None, 1, on_hand=10, picked=3), stock("L", "WH1", 1, 4),
        stock("XL", "WH1", 7.9, 0),
    ]
    styles = [style(sizes=("S", "M", "L", "XL", "XXL")), style("S200", ("M",), status="D")]
    state = expected_state(dump(style=styles, inventory=inventory))
    # S: 3 in WH1, -4 in WH2 (owed there: not sellable twice), QC is not sellable; M: 10 - 3 picked - 1 open
    assert state.variants == {"S100-BLK---S": 0, "S100-BLK---M": 6, "S100-BLK---L": 0, "S100-BLK---XL": 7,
                              "S100-BLK---XXL": 0}
    sellable = TenantRules(sellable_warehouses=("WH1",))
    assert expected_state(dump(style=styles, inventory=inventory), sellable).variants["S100-BLK---S"] == 3


def test_direct_ats_discontinued_skus_and_no_sellable_warehouse() -> None:
    inventory = [{**stock("M", "WH1", 5, 0), "qty_ats": 9}]
    styles = [style(sizes=("M", "L"), sku_status={"L": "D"})]
    rules = TenantRules(stock_formula="direct_ats", ats_field="qty_ats")
    assert expected_state(dump(style=styles, inventory=inventory), rules).variants == {"S100-BLK---M": 9}
    none_sellable = expected_state(dump(style=styles, inventory=inventory, locations=[{"location": "WH1"}]))
    assert none_sellable.variants == {} and none_sellable.skipped[0].record == "stock"
