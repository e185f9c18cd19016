"""ERP-truth aggregates: recomputed from documents, so order and repetition cannot change them."""

from __future__ import annotations

from config.mapping import Mapping
from sync.orders.aggregates import customer_aggregates
from sync.orders.lifecycle import profile_key
from tests.support.orders import ErpOrder

MAPPING = Mapping()


def history() -> list:  # type: ignore[type-arg]
    first = ErpOrder(MAPPING, number="SO1")
    first.confirm()  # 143.00
    first.ship("P1")
    first.invoice("I1")
    first.credit("M1", "50.00", {1: 1})
    first.credit("M2", "30.00", {2: 1})  # a second partial refund: Klaviyo's CLV would drop it
    second = ErpOrder(MAPPING, number="SO2", entered=first.clock, clock=first.clock)
    second.confirm()
    second.cancel_line(2)  # 113.00
    cancelled = ErpOrder(MAPPING, number="SO3", clock=second.clock)
    cancelled.confirm()
    cancelled.cancel()
    entered_only = ErpOrder(MAPPING, number="SO4")
    wholesale = ErpOrder(MAPPING, number="SO5", ord_type="WHL")
    wholesale.confirm()
    return [o.documents() for o in (first, second, cancelled, entered_only, wholesale)]


def test_aggregates_count_confirmed_orders_and_every_refund() -> None:
    docs = history()
    props = customer_aggregates(docs, MAPPING)
    assert props == {
        "erp_order_count": 2,
        "erp_gross_revenue": 256.0,
        "erp_refunds": 80.0,
        "erp_net_lifetime_value": 176.0,
        "erp_first_order_date": docs[0].order.confirmed.isoformat(),
        "erp_last_order_date": docs[1].order.confirmed.isoformat(),
    }


def test_aggregates_are_idempotent_and_order_independent() -> None:
    docs = history()
    once = customer_aggregates(docs, MAPPING)
    assert customer_aggregates(list(reversed(docs)) + docs, MAPPING) == once


def test_prefix_from_mapping_and_empty_customer() -> None:
    profiles = MAPPING.profiles.model_copy(update={"aggregate_prefix": "bc_"})
    mapping = MAPPING.model_copy(update={"profiles": profiles})
    props = customer_aggregates([], mapping)
    assert props["bc_order_count"] == 0 and props["bc_first_order_date"] is None
    assert set(props) == {"bc_order_count", "bc_gross_revenue", "bc_refunds", "bc_net_lifetime_value",
                          "bc_first_order_date", "bc_last_order_date"}


def test_profile_key_groups_guest_orders_by_email() -> None:
    guest = ErpOrder(MAPPING, customer="WEBGUEST", email="Guest@Example.com").documents().order
    member = ErpOrder(MAPPING).documents().order
    assert profile_key(guest, MAPPING) == "email:guest@example.com"
    assert profile_key(member, MAPPING) == "external_id:C1001"
