"""Reconciliation's re-check of changes in flight (pure part): Blue Cherry's orders as they are now from the run's
snapshot and the records changed since, and the operation keys of the fleet's work on a customer."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sync.orders.records import CreditMemo, OrderDocuments, OrderHeader, PickTicket
from sync.orders.status import OrderStatus
from sync.reconcile.settle import customer_work_keys, merge_documents

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def header(number: str, customer: str = "C1", status: str = "O") -> OrderHeader:
    return OrderHeader(key=number, number=number, customer=customer, status_code=status, status=OrderStatus.CONFIRMED,
                       entered=AT, last_mod=AT)


def pick(number: str, order: str, shipped: bool = False) -> PickTicket:
    return PickTicket(key=number, number=number, order=order, shipped=shipped, last_mod=AT)


def test_changed_records_are_laid_over_the_snapshot_and_only_touched_orders_come_back() -> None:
    snapshot = {"SO1": OrderDocuments(order=header("SO1"), picks=(pick("P1", "SO1"),)),
                "SO2": OrderDocuments(order=header("SO2", "C2"))}
    merged = merge_documents(
        snapshot, [header("SO1", status="X"), header("SO3", "C3")],
        picks=[pick("P1", "SO1", shipped=True), pick("P2", "SO1"), pick("P9", "SO404")],
        credit_memos=[CreditMemo(key="M1", number="M1", order="SO2", date=AT, total=Decimal("5"))])
    assert sorted(merged) == ["SO1", "SO2", "SO3"]  # SO404: an order neither side knows
    so1 = merged["SO1"]
    assert so1.order.status_code == "X"  # the changed header, its documents kept
    assert [(p.number, p.shipped) for p in so1.picks] == [("P1", True), ("P2", False)]  # replaced, joined
    assert merged["SO2"].order.customer == "C2" and [m.number for m in merged["SO2"].credit_memos] == ["M1"]
    assert merged["SO3"].picks == () and merged["SO3"].order.customer == "C3"  # a new order: no documents yet
    assert snapshot["SO1"].picks[0].shipped is False  # the snapshot itself is left as read


def test_a_customers_work_keys_are_the_ones_the_fleet_claims() -> None:
    assert customer_work_keys("C1") == {"profile:C1:full", "profile:C1:immediate", "consent:email:C1",
                                        "consent:sms:C1", "profile-aggregates:external_id:C1", "erase:C1"}
