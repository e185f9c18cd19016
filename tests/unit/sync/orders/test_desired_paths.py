"""The order paths of issue #5, at the level of the pure desired-state function."""

from __future__ import annotations

import pytest

from config.mapping import Mapping
from sync.orders.desired import DeliveredView, desired_operations
from sync.orders.records import parse_order_documents
from sync.orders.skus import ProductDetails, StyleCatalog
from tests.support.order_fleet import Fleet
from tests.support.orders import ErpOrder

MAPPING = Mapping()
M = MAPPING.metrics


def keys(fleet: Fleet, docs) -> list[str]:  # type: ignore[no-untyped-def]
    return [op.key for op in fleet.process(docs).operations]


def test_full_life_entered_confirmed_amended_shipped_invoiced_two_credit_memos() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    assert keys(fleet, erp.documents()) == []  # entered: nothing
    erp.confirm()
    assert keys(fleet, erp.documents()) == [
        "event:Placed Order:SO1001", "event:Ordered Product:SO1001:1", "event:Ordered Product:SO1001:2",
    ]
    placed = fleet.event(M.placed_order, "SO1001")
    assert placed["value"] == 143.0  # 2x50 + 30 merchandise + 8 tax + 5 freight
    assert placed["time"] == "2026-03-02T14:30:00+00:00"
    assert [i["Quantity"] for i in placed["properties"]["Items"]] == [2, 1]
    assert keys(fleet, erp.documents()) == []  # recomputing changes nothing

    erp.set_qty(2, 3)
    erp.discount, erp.discount_code = "10.00", "SPRING10"
    ops = fleet.process(erp.documents()).operations
    assert [op.payload["metric"] for op in ops] == [M.updated_order]
    change = ops[0].payload["properties"]
    assert (change["PreviousValue"], change["NewValue"]) == (143.0, 193.0)
    assert change["LinesChanged"][0]["OldQuantity"] == 1 and change["LinesChanged"][0]["NewQuantity"] == 3
    assert change["NewDiscountCode"] == "SPRING10"
    assert ops[0].payload["unique_id"].startswith("SO1001:updated:")

    erp.ship("P1", {1: 1})
    (partial,) = fleet.process(erp.documents()).operations
    assert partial.payload["unique_id"] == "SO1001:fulfilled:P1"
    assert partial.payload["properties"]["Partial"] is True
    assert partial.payload["properties"]["TrackingNumber"] == "1Z999"
    erp.ship("P2", {1: 1, 2: 3})
    (complete,) = fleet.process(erp.documents()).operations
    assert complete.payload["properties"]["Partial"] is False
    assert complete.payload["properties"]["ItemsShipped"] == 4

    erp.invoice("I1")
    erp.close()
    assert keys(fleet, erp.documents()) == []  # invoice is not the dispatch document by default

    erp.credit("M1", "50.00", {1: 1})
    (first,) = fleet.process(erp.documents()).operations
    assert (first.payload["unique_id"], first.payload["value"]) == ("SO1001", 50.0)
    assert first.payload["properties"]["Reason"] == "Too small" and first.payload["properties"]["Restocked"]
    erp.credit("M2", "30.00", {2: 1})
    (second,) = fleet.process(erp.documents()).operations
    assert second.payload["unique_id"] == "SO1001:refund:M2"
    assert not fleet.duplicates
    assert fleet.ids(M.refunded_order) == {"SO1001", "SO1001:refund:M2"}


def test_entered_then_cancelled_sends_nothing() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    fleet.process(erp.documents())
    erp.cancel()
    assert keys(fleet, erp.documents()) == []
    assert fleet.klaviyo == {}


def test_confirmed_then_cancelled_is_one_fast_cancellation_with_the_placed_value() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    erp.confirm()
    fleet.process(erp.documents())
    erp.cancel()
    for line in erp.lines:  # an ERP may zero the lines on cancellation
        line.cancel_qty = line.qty
    (cancel,) = fleet.process(erp.documents()).operations
    assert cancel.lane == "fast" and cancel.payload["metric"] == M.cancelled_order
    assert cancel.payload["unique_id"] == "SO1001" and cancel.payload["value"] == 143.0
    assert keys(fleet, erp.documents()) == []


def test_confirmed_line_cancelled_then_shipped() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    erp.confirm()
    fleet.process(erp.documents())
    erp.cancel_line(2)
    (update,) = fleet.process(erp.documents()).operations
    assert update.payload["metric"] == M.updated_order
    assert [line["Line"] for line in update.payload["properties"]["LinesRemoved"]] == ["2"]
    assert update.payload["value"] == 113.0
    erp.ship("P1")
    (fulfilled,) = fleet.process(erp.documents()).operations
    assert fulfilled.payload["properties"]["Partial"] is False  # the cancelled line is not owed
    assert M.cancelled_order not in {m for (_, m, _) in fleet.klaviyo}


def test_hold_before_confirmation_then_release() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    erp.hold()
    assert keys(fleet, erp.documents()) == []
    erp.release()
    assert keys(fleet, erp.documents())[0] == "event:Placed Order:SO1001"


def test_hold_after_confirmation_and_release_send_nothing_more() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    erp.confirm()
    fleet.process(erp.documents())
    erp.hold()
    assert keys(fleet, erp.documents()) == []
    fleet.lose_state()  # even a re-scan while on hold re-places the confirmed order, under the same id
    assert "event:Placed Order:SO1001" in keys(fleet, erp.documents())
    erp.release()
    assert keys(fleet, erp.documents()) == []
    assert not fleet.duplicates[3:]  # only the re-scan's resends, which Klaviyo de-duplicates


def test_wholesale_order_produces_nothing() -> None:
    erp = ErpOrder(MAPPING, ord_type="WHL")
    erp.confirm()
    erp.ship("P1")
    result = desired_operations(erp.documents(), DeliveredView(), MAPPING)
    assert result.operations == [] and result.excluded and "WHL" in result.excluded


def test_channel_and_division_filters() -> None:
    mapping = MAPPING.model_copy(update={"lifecycle": MAPPING.lifecycle.model_copy(
        update={"divisions": ("02",)})})
    erp = ErpOrder(mapping)
    erp.confirm()
    assert desired_operations(erp.documents(), DeliveredView(), mapping).excluded
    erp = ErpOrder(MAPPING, channel="EDI")
    erp.confirm()
    assert desired_operations(erp.documents(), DeliveredView(), MAPPING).excluded


def test_catch_all_account_lands_on_the_shoppers_email() -> None:
    erp, fleet = ErpOrder(MAPPING, customer="WEBGUEST", email=" Shopper@Example.COM "), Fleet(MAPPING)
    erp.confirm()
    ops = fleet.process(erp.documents()).operations
    assert ops and all(op.payload["profile"] == {"email": "shopper@example.com"} for op in ops)


def test_catch_all_without_email_is_a_problem_not_an_event() -> None:
    erp = ErpOrder(MAPPING, customer="WEBGUEST", email="")
    erp.confirm()
    result = desired_operations(erp.documents(), DeliveredView(), MAPPING)
    assert result.operations == []
    (problem,) = result.problems
    assert problem.record_key == "order:SO1001" and problem.type == "customer_mismatch"


def test_storefront_reference_is_the_order_id_of_placed_and_cancelled() -> None:
    mapping = MAPPING.model_copy(update={"lifecycle": MAPPING.lifecycle.model_copy(
        update={"use_storefront_ref": True})})
    erp, fleet = ErpOrder(mapping, storefront_ref="#1042"), Fleet(mapping)
    erp.confirm()
    fleet.process(erp.documents())
    erp.cancel()
    fleet.process(erp.documents())
    assert fleet.ids(M.placed_order) == {"#1042"}
    assert fleet.event(M.cancelled_order, "#1042")["properties"]["ErpOrderNumber"] == "SO1001"
    assert "SO1001:1" in fleet.ids(M.ordered_product)  # line ids stay on the stable ERP number


def test_storefront_channel_skips_placed_and_products_but_sends_the_rest() -> None:
    mapping = MAPPING.model_copy(update={"lifecycle": MAPPING.lifecycle.model_copy(
        update={"use_storefront_ref": True, "storefront_sends_placed": ("WEB",)})})
    erp, fleet = ErpOrder(mapping, storefront_ref="#1042"), Fleet(mapping)
    erp.confirm()
    assert keys(fleet, erp.documents()) == []
    erp.set_qty(1, 1)
    erp.ship("P1")
    erp.invoice("I1")
    erp.credit("M1", "20.00", {1: 1})
    assert [k.split(":")[1] for k in keys(fleet, erp.documents())] == [
        M.updated_order, M.fulfilled_order, M.refunded_order]
    assert fleet.ids(M.refunded_order) == {"#1042"}


def test_storefront_order_without_its_reference_waits_with_an_exception_for_ecommerce() -> None:
    # issue 14, item 4: under the ERP number its refund would match no Placed Order in Klaviyo
    mapping = MAPPING.model_copy(update={"lifecycle": MAPPING.lifecycle.model_copy(
        update={"use_storefront_ref": True, "storefront_sends_placed": ("WEB",)})})
    erp, fleet = ErpOrder(mapping, storefront_ref=""), Fleet(mapping)
    erp.confirm()
    erp.ship("P1")
    erp.invoice("I1")
    erp.credit("M1", "20.00", {1: 1})
    result = fleet.process(erp.documents())
    assert not result.operations
    (problem,) = result.problems
    assert (problem.type, problem.record_key, problem.field) == ("storefront_ref_missing", "order:SO1001", "web_ref")
    assert mapping.owners.owner_of(problem.type) == "ecommerce"
    erp.storefront_ref = "#1042"  # Blue Cherry gets the reference: everything goes, under it
    assert fleet.ids(M.refunded_order) == set() and keys(fleet, erp.documents())
    assert fleet.ids(M.refunded_order) == {"#1042"}


def test_invoice_as_dispatch_document() -> None:
    mapping = MAPPING.model_copy(update={"lifecycle": MAPPING.lifecycle.model_copy(
        update={"dispatch_document": "invoice"})})
    erp, fleet = ErpOrder(mapping), Fleet(mapping)
    erp.confirm()
    erp.ship("P1")
    assert M.fulfilled_order not in {op.payload["metric"] for op in fleet.process(erp.documents()).operations}
    erp.invoice("I7")
    (op,) = fleet.process(erp.documents()).operations
    assert op.payload["unique_id"] == "SO1001:fulfilled:I7"


def test_unshipped_pick_is_not_a_fulfilment() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    erp.confirm()
    erp.pick_unshipped("P1")
    assert M.fulfilled_order not in {op.payload["metric"] for op in fleet.process(erp.documents()).operations}


def test_shipped_pick_of_unconfirmed_order_sends_nothing() -> None:
    erp = ErpOrder(MAPPING)
    erp.ship("P1")
    assert desired_operations(erp.documents(), DeliveredView(), MAPPING).operations == []


def test_refund_id_is_pinned_to_the_memo_first_delivered() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    erp.confirm()
    erp.ship("P1")
    erp.invoice("I1")
    erp.credit("M2", "30.00", {2: 1})
    fleet.process(erp.documents())
    # a memo dated earlier arrives later: it must not steal the order-level id (nor resend M2 under another)
    erp.credit("M1", "50.00", {1: 1}, when=erp.entered)
    (late,) = fleet.process(erp.documents()).operations
    assert late.payload["unique_id"] == "SO1001:refund:M1"
    assert fleet.event(M.refunded_order, "SO1001")["properties"]["CreditMemo"] == "M2"
    # without the pin (state lost), the earliest memo by date takes the order id
    result = desired_operations(erp.documents(), DeliveredView(), MAPPING)
    assert result.refund_memo_with_order_id == "M1"


def test_refund_order_by_date_then_number() -> None:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    when = erp.tick()
    erp.credit("M9", "10.00", {1: 1}, when=when)
    erp.credit("M3", "10.00", {1: 1}, when=when)
    ops = desired_operations(erp.documents(), DeliveredView(), MAPPING).operations
    refunds = [op.payload for op in ops if op.payload["metric"] == M.refunded_order]
    assert [(p["properties"]["CreditMemo"], p["unique_id"]) for p in refunds] == [
        ("M3", "SO1001"), ("M9", "SO1001:refund:M9")]


def test_cancellation_seen_before_placement_gives_the_same_events() -> None:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    in_order = Fleet(MAPPING)
    in_order.process(erp.documents())
    erp.cancel()
    in_order.process(erp.documents())
    late = Fleet(MAPPING)  # the worker only ever saw the cancelled order
    ops = late.process(erp.documents()).operations
    assert [op.payload["metric"] for op in ops][0] == M.placed_order
    assert ops[-1].payload["metric"] == M.cancelled_order and ops[-1].lane == "default"
    assert set(late.klaviyo) == set(in_order.klaviyo)


def test_rescan_after_lost_state_ends_in_the_same_klaviyo_state() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    erp.confirm()
    fleet.process(erp.documents())
    erp.set_qty(1, 5)
    fleet.process(erp.documents())
    erp.ship("P1")
    erp.invoice("I1")
    erp.credit("M1", "50.00", {1: 1})
    erp.credit("M2", "50.00", {1: 1})
    fleet.process(erp.documents())
    before = dict(fleet.klaviyo)
    fleet.lose_state()
    result = fleet.process(erp.documents())
    assert M.updated_order not in {op.payload["metric"] for op in result.operations}  # no update invented
    assert fleet.klaviyo == before  # every resend was a duplicate Klaviyo drops
    assert keys(fleet, erp.documents()) == []


def test_backfill_marks_events_and_uses_the_batch_lane() -> None:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.cancel()
    ops = desired_operations(erp.documents(), DeliveredView(), MAPPING, backfill=True).operations
    assert ops and all(op.payload["backfill"] is True and op.lane == "batch" for op in ops)


def test_catalog_details_fill_the_recommended_item_properties() -> None:
    catalog = StyleCatalog({"ST100": ProductDetails(name="Linen Shirt", brand="Acme", categories=("Shirts",),
                                                    url="https://x/p", image_url="https://x/i.jpg")})
    erp = ErpOrder(MAPPING)
    erp.confirm()
    placed = desired_operations(erp.documents(), DeliveredView(), MAPPING, catalog).operations[0].payload
    first = placed["properties"]["Items"][0]
    assert (first["ProductName"], first["Brand"], first["ProductURL"]) == ("Linen Shirt", "Acme", "https://x/p")
    assert placed["properties"]["Brands"] == ["Acme"] and placed["properties"]["Categories"] == ["Shirts"]
    assert placed["properties"]["ItemNames"] == ["Linen Shirt", "Style ST200"]


@pytest.mark.parametrize(("tax", "freight", "value"), [(True, True, 143.0), (False, True, 135.0),
                                                       (True, False, 138.0), (False, False, 130.0)])
def test_value_follows_the_mapping_flags(tax: bool, freight: bool, value: float) -> None:
    mapping = MAPPING.model_copy(update={"lifecycle": MAPPING.lifecycle.model_copy(
        update={"value_includes_tax": tax, "value_includes_freight": freight})})
    erp = ErpOrder(mapping)
    erp.confirm()
    placed = desired_operations(erp.documents(), DeliveredView(), mapping).operations[0]
    assert placed.payload["value"] == value


def test_metric_names_come_from_the_mapping() -> None:
    mapping = MAPPING.model_copy(update={"metrics": MAPPING.metrics.model_copy(
        update={"cancelled_order": "Canceled Order"})})
    erp = ErpOrder(mapping)
    erp.confirm()
    erp.cancel()
    ops = desired_operations(erp.documents(), DeliveredView(), mapping).operations
    assert ops[-1].key == "event:Canceled Order:SO1001"


def test_revision_survives_a_json_round_trip_as_the_baseline() -> None:
    erp, fleet = ErpOrder(MAPPING), Fleet(MAPPING)
    erp.confirm()
    fleet.process(erp.documents())
    stored = fleet.view.model_dump_json()
    fleet.view = DeliveredView.model_validate_json(stored)
    assert keys(fleet, erp.documents()) == []


def test_shipped_pick_without_ship_date_uses_last_mod_or_waits_as_a_problem() -> None:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1")
    picks = erp.raw_picks()
    picks[0]["ship_date"] = ""
    docs = parse_order_documents(erp.raw_order(), MAPPING, picks=picks).documents
    assert docs is not None
    fulfilled = desired_operations(docs, DeliveredView(), MAPPING).operations[-1].payload
    assert fulfilled["metric"] == M.fulfilled_order and fulfilled["time"] == "2026-03-02T15:00:00+00:00"
    del picks[0]["last_mod"]
    docs = parse_order_documents(erp.raw_order(), MAPPING, picks=picks).documents
    assert docs is not None
    result = desired_operations(docs, DeliveredView(), MAPPING)
    assert M.fulfilled_order not in {op.payload["metric"] for op in result.operations}
    assert [(p.record_key, p.field) for p in result.problems] == [("pick:P1", "ship_date")]
