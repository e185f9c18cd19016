"""Refund ids that survive state loss, at the level of the pure domain: the rule choosing which credit memo
carries the order-level id, and reading back what Klaviyo holds by the key each event carries."""

from __future__ import annotations

from typing import Any

from config.mapping import Mapping
from sync.operations import Operation
from sync.orders.desired import DeliveredView, desired_operations, event_key
from sync.orders.refund_ids import SentRefunds, decided_refunds, sent_refunds
from tests.support.orders import ErpOrder

MAPPING = Mapping()
M = MAPPING.metrics


def refunds(ops: list[Operation]) -> dict[str, str]:
    """memo -> unique_id of the Refunded Order operations."""
    return {op.payload["properties"]["CreditMemo"]: op.payload["unique_id"] for op in ops
            if op.payload["metric"] == M.refunded_order}


def invoiced() -> ErpOrder:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1")
    erp.invoice("I1")
    return erp


def test_memos_out_of_date_order_the_decision_taken_with_the_first_stays() -> None:
    erp = invoiced()
    later = erp.tick(60)
    erp.credit("M2", "30.00", {2: 1}, when=later)
    first = desired_operations(erp.documents(), DeliveredView(), MAPPING)
    assert refunds(first.operations) == {"M2": "SO1001"} and first.refund_ids == {"M2": "SO1001"}
    view = DeliveredView().decided(first)  # remembered at computation, before anything was delivered
    erp.credit("M1", "50.00", {1: 1}, when=erp.entered)  # dated before M2, read after it
    second = desired_operations(erp.documents(), view, MAPPING)
    assert refunds(second.operations) == {"M2": "SO1001", "M1": "SO1001:refund:M1"}
    assert second.refund_memo_with_order_id == "M2"


def test_a_backdated_memo_after_state_loss_with_what_klaviyo_holds() -> None:
    erp = invoiced()
    erp.credit("M2", "50.00", {1: 1})
    erp.credit("M3", "30.00", {2: 1})
    erp.credit("M1", "20.00", {1: 1}, when=erp.entered)  # backdated, before M2
    # state lost; Klaviyo holds M2 under the order id and M3 under its own
    view = DeliveredView(refund_memo_with_order_id="M2", refund_memos_composite=frozenset({"M3"}))
    result = desired_operations(erp.documents(), view, MAPPING)
    assert refunds(result.operations) == {"M2": "SO1001", "M3": "SO1001:refund:M3", "M1": "SO1001:refund:M1"}
    # blind, the backdated memo would take the order id (which Klaviyo drops) and M2 would go again
    blind = desired_operations(erp.documents(), DeliveredView(), MAPPING)
    assert refunds(blind.operations)["M1"] == "SO1001" and refunds(blind.operations)["M2"] == "SO1001:refund:M2"


def test_a_memo_already_under_its_own_id_never_takes_the_order_id() -> None:
    erp = invoiced()
    erp.credit("M1", "50.00", {1: 1})
    erp.credit("M2", "30.00", {2: 1})
    # Klaviyo holds M1 under its composite id only (its order-level event never went): M2 takes the order id
    view = DeliveredView(refund_memos_composite=frozenset({"M1"}))
    result = desired_operations(erp.documents(), view, MAPPING)
    assert refunds(result.operations) == {"M1": "SO1001:refund:M1", "M2": "SO1001"}
    only = DeliveredView(refund_memos_composite=frozenset({"M1", "M2"}))
    result = desired_operations(erp.documents(), only, MAPPING)
    assert result.refund_memo_with_order_id is None and set(refunds(result.operations).values()) == {
        "SO1001:refund:M1", "SO1001:refund:M2"}


def test_refund_ids_that_cannot_be_told_hold_the_refunds_back_but_nothing_else() -> None:
    erp = invoiced()
    erp.credit("M1", "50.00", {1: 1})
    result = desired_operations(erp.documents(), DeliveredView(refund_ids_unknown=True), MAPPING)
    assert refunds(result.operations) == {} and result.refund_ids == {}
    assert {op.payload["metric"] for op in result.operations} >= {M.placed_order, M.fulfilled_order}


def props(key: str, memo: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"bcsync_key": key, **({"CreditMemo": memo} if memo else {}), **extra}


def test_what_klaviyo_holds_is_read_by_the_key_each_event_carries() -> None:
    metric = M.refunded_order
    held = [
        props(event_key(metric, "#1042"), "M2"),
        props(event_key(metric, "SO1001:refund:M1"), "M1"),
        props(event_key(metric, "SO1002:refund:M7"), "M7"),  # another order of the same profile
        props(event_key(metric, "SO10011:refund:M8"), "M8"),  # an order whose number starts alike
        props(event_key(M.placed_order, "#1042")),
        {"CreditMemo": "M5", "OrderId": "#1042"},  # no key: not the fleet's, or sent before keys: unread
    ]
    assert sent_refunds("SO1001", "#1042", metric, held) == SentRefunds("M2", frozenset({"M1"}))
    assert sent_refunds("SO1003", "SO1003", metric, held) == SentRefunds()


def test_a_decision_recovered_for_a_memo_not_read_again_yet_is_recorded() -> None:
    """After state loss the re-scan may compute the order with only its later memo read back: the recovered
    fact that M1 went under the order id must be recorded with it, or the next computation (facts present, so
    Klaviyo is not asked again) gives M1 a second id and Klaviyo counts its refund twice."""
    erp = invoiced()
    erp.credit("M2", "30.00", {2: 1})
    recovered = DeliveredView(refund_memo_with_order_id="M1")  # read back from Klaviyo; M1 not stored yet
    result = desired_operations(erp.documents(), recovered, MAPPING)
    assert refunds(result.operations) == {"M2": "SO1001:refund:M2"}
    assert decided_refunds(result, recovered) == SentRefunds("M1", frozenset({"M2"}))
    assert decided_refunds(result) == SentRefunds(None, frozenset({"M2"}))  # the computation alone forgets M1
