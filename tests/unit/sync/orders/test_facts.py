"""Durable per-order facts: what they hold, their stored form, and aggregates over them equal to the aggregates
over the documents for the same orders (the documents expire; the facts are what the fleet sums)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.mapping import Mapping
from sync.orders.aggregates import customer_aggregates, facts_aggregates
from sync.orders.facts import EventHeader, OrderFacts, customer_profile_key, decode_facts, encode_facts, order_facts
from sync.orders.lifecycle import confirmation_time, exclusion_reason, is_confirmed, profile_key
from sync.orders.records import OrderDocuments
from sync.orders.refund_ids import SentRefunds
from sync.orders.revision import money, order_revision
from sync.orders.status import OrderStatus
from tests.support.orders import ErpOrder

MAPPING = Mapping()


def reference_aggregates(orders: Iterable[OrderDocuments], mapping: Mapping) -> dict[str, Any]:
    """The aggregates as computed from the documents before the facts existed (the rule in docs/rules.md)."""
    gross, refunds, count, dates, seen = Decimal(0), Decimal(0), 0, [], set()
    for docs in orders:
        order = docs.order
        counts = (exclusion_reason(order, mapping) is None and is_confirmed(order)
                  and order.status != OrderStatus.CANCELLED)
        if order.number in seen or not counts:
            continue
        seen.add(order.number)
        count += 1
        gross += order_revision(order, mapping).value
        refunds += sum((memo.total for memo in docs.credit_memos), Decimal(0))
        dates.append(confirmation_time(order))
    p = mapping.profiles.aggregate_prefix
    return {f"{p}order_count": count, f"{p}gross_revenue": money(gross), f"{p}refunds": money(refunds),
            f"{p}net_lifetime_value": money(gross - refunds),
            f"{p}first_order_date": min(dates).isoformat() if dates else None,
            f"{p}last_order_date": max(dates).isoformat() if dates else None}


def stored(docs: OrderDocuments, mapping: Mapping = MAPPING) -> OrderFacts | None:
    """The facts as the store gives them back: built, encoded, decoded."""
    facts = order_facts(docs, mapping, "external_id:C1001")
    return None if facts is None else decode_facts(facts.number, facts.profile, encode_facts(facts))


def test_facts_of_a_shipped_partly_refunded_order() -> None:
    erp = ErpOrder(MAPPING, number="SO1", storefront_ref="SHOP#1")
    erp.confirm()  # 2 x 50 + 30 + tax 8 + freight 5 = 143
    erp.ship("P1", {1: 2})
    erp.invoice("I1", {1: 2})
    erp.credit("M1", "50.00", {1: 1})
    erp.credit("M2", "12.50", {1: 1})
    erp.close()
    facts = order_facts(erp.documents(), MAPPING, "external_id:C1001")
    assert facts == OrderFacts(
        number="SO1", profile="external_id:C1001", status=OrderStatus.CLOSED,
        placed_at=erp.documents().order.confirmed, placed_value=Decimal("143.00"),
        cancelled_value=Decimal("0.00"), shipped_value=Decimal("100.00"), refunded=Decimal("62.50"),
        storefront_ref="SHOP#1", memos={"M1": Decimal("50.00"), "M2": Decimal("12.50")},
        header=EventHeader(division="01", season="SS26", warehouse="MAIN", ord_type="WEB", sales_channel="WEB",
                           currency="USD"),
    )
    assert facts.counts and facts.value == Decimal("143.00")


def test_cancellations_entered_and_excluded_orders() -> None:
    partly = ErpOrder(MAPPING, number="SO2")
    partly.confirm()
    partly.cancel_line(2)  # 30 of 143 cancelled
    facts = order_facts(partly.documents(), MAPPING)
    assert facts is not None and (facts.placed_value, facts.cancelled_value, facts.value) == (
        Decimal("143.00"), Decimal("30.00"), Decimal("113.00"))

    whole = ErpOrder(MAPPING, number="SO3")
    whole.confirm()
    whole.cancel()
    facts = order_facts(whole.documents(), MAPPING)
    assert facts is not None and facts.cancelled_value == facts.placed_value == Decimal("143.00")
    assert facts.placed_at is not None and not facts.counts, "placed, then cancelled in full: counts nothing"

    entered = order_facts(ErpOrder(MAPPING, number="SO4").documents(), MAPPING)
    assert entered is not None and entered.placed_at is None and not entered.counts

    wholesale = ErpOrder(MAPPING, number="SO5", ord_type="WHL")
    wholesale.confirm()
    assert order_facts(wholesale.documents(), MAPPING) is None, "outside the mapping's filters: no facts"


def test_the_stored_form_is_compact_and_exact() -> None:
    erp = ErpOrder(MAPPING, number="SO1")
    erp.confirm()
    facts = order_facts(erp.documents(), MAPPING, "external_id:C1001")
    assert facts is not None
    raw = encode_facts(facts)
    assert "SO1" not in raw and "C1001" not in raw, "number and profile are the hash field and key"
    assert '"cv"' not in raw and '"ri"' not in raw, "empty fields are left out"
    assert decode_facts("SO1", "external_id:C1001", raw) == facts
    assert facts.refund_ids is None, "no refund computed: nothing decided"
    with_ids = order_facts(erp.documents(), MAPPING, "external_id:C1001", SentRefunds("M1", frozenset({"M3", "M2"})))
    assert with_ids is not None and with_ids.refund_ids == SentRefunds("M1", frozenset({"M2", "M3"}))
    assert decode_facts("SO1", "external_id:C1001", encode_facts(with_ids)) == with_ids
    assert len(raw) < 100, raw


def test_a_customers_own_orders_are_keyed_as_lifecycle_profile_key() -> None:
    order = ErpOrder(MAPPING, customer="C77").documents().order
    assert customer_profile_key("C77") == profile_key(order, MAPPING)


def history() -> list[OrderDocuments]:
    first = ErpOrder(MAPPING, number="SO1")
    first.confirm()
    first.ship("P1")
    first.invoice("I1")
    first.credit("M1", "50.00", {1: 1})
    first.credit("M2", "30.00", {2: 1})
    second = ErpOrder(MAPPING, number="SO2", entered=first.clock, clock=first.clock)
    second.confirm()
    second.cancel_line(2)
    cancelled = ErpOrder(MAPPING, number="SO3", clock=second.clock)
    cancelled.confirm()
    cancelled.cancel()
    wholesale = ErpOrder(MAPPING, number="SO5", ord_type="WHL")
    wholesale.confirm()
    return [o.documents() for o in (first, second, cancelled, ErpOrder(MAPPING, number="SO4"), wholesale)]


def test_aggregates_over_stored_facts_equal_aggregates_over_documents() -> None:
    docs = history()
    facts = [f for d in docs if (f := stored(d)) is not None]
    assert facts_aggregates(facts, MAPPING) == reference_aggregates(docs, MAPPING) == customer_aggregates(
        docs, MAPPING)
    assert facts_aggregates(facts, MAPPING)["erp_order_count"] == 2
    assert facts_aggregates(list(reversed(facts)) + facts, MAPPING) == facts_aggregates(facts, MAPPING)


OPS = ["confirm", "hold", "cancel", "close", "set_qty", "set_price", "cancel_line", "ship", "invoice", "credit",
       "discount"]


def random_order(data: st.DataObject, number: str, mapping: Mapping) -> OrderDocuments:
    erp = ErpOrder(mapping, number=number, ord_type=data.draw(st.sampled_from(["WEB", "WEB", "WHL"])),
                   tax=data.draw(st.sampled_from(["0", "8.00"])), freight=data.draw(st.sampled_from(["0", "5.00"])))
    erp.clock = erp.entered = datetime(2024, 1, 1) + timedelta(days=data.draw(st.integers(0, 900)))  # years apart
    for op in data.draw(st.lists(st.sampled_from(OPS), max_size=8)):
        line = data.draw(st.sampled_from(erp.lines))
        if op == "confirm":
            erp.confirm()
        elif op == "hold":
            erp.hold()
        elif op == "cancel":
            erp.cancel()
        elif op == "close":
            erp.close()
        elif op == "set_qty":
            erp.set_qty(line.seq, line.cancel_qty + data.draw(st.integers(0, 3)))
        elif op == "set_price":
            erp.set_price(line.seq, data.draw(st.sampled_from(["9.99", "25.50", "50.00"])))
        elif op == "cancel_line":
            erp.cancel_line(line.seq, data.draw(st.integers(0, line.qty)))
        elif op == "ship":
            erp.ship(f"P{number}{len(erp.picks)}")
        elif op == "invoice":
            erp.invoice(f"I{number}{len(erp.invoices)}")
        elif op == "credit":
            erp.credit(f"M{number}{len(erp.memos)}", data.draw(st.sampled_from(["5.00", "12.34", "60.00"])),
                       {line.seq: 1})
        else:
            erp.discount = data.draw(st.sampled_from(["0", "7.50"]))
    return erp.documents()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_property_facts_aggregates_equal_document_aggregates(data: st.DataObject) -> None:
    lifecycle = MAPPING.lifecycle.model_copy(update={
        "value_includes_tax": data.draw(st.booleans()), "value_includes_freight": data.draw(st.booleans())})
    mapping = MAPPING.model_copy(update={"lifecycle": lifecycle})
    docs = [random_order(data, f"SO{i}", mapping) for i in range(data.draw(st.integers(0, 5)))]
    docs += data.draw(st.lists(st.sampled_from(docs), max_size=2)) if docs else []  # repeats count once
    facts = [f for d in docs if (f := stored(d, mapping)) is not None]
    expected = reference_aggregates(docs, mapping)
    assert facts_aggregates(facts, mapping) == expected
    assert customer_aggregates(docs, mapping) == expected
