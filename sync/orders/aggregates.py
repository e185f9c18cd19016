"""ERP-truth aggregates of a customer, recomputed from all their orders: from the documents
(`customer_aggregates`) or from the orders' durable facts (`facts_aggregates`, what the fleet uses, since a
closed order's documents expire but its facts stay as long as the customer).

Never incremented per message: the same documents always give the same numbers, so a redelivered or
reordered task cannot double-count. Klaviyo's own lifetime value counts a refund only when its
unique_id equals the Placed Order's, so a second partial refund is dropped there; VIP segments should
use these properties instead.

What counts: orders inside the mapping's filters that were confirmed and are not cancelled in full.
Gross revenue is their current value (after partial cancellations, with tax and freight as the
mapping's value flags say); refunds are the credit memos of those orders; net = gross - refunds.
Amounts are summed as they are: a customer is assumed to buy in one currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from config.mapping import Mapping
from sync.orders.facts import OrderFacts, order_facts
from sync.orders.lifecycle import exclusion_reason, is_confirmed
from sync.orders.records import OrderDocuments
from sync.orders.revision import money
from sync.orders.status import OrderStatus


def counts_for_customer(docs: OrderDocuments, mapping: Mapping) -> bool:
    order = docs.order
    return (
        exclusion_reason(order, mapping) is None
        and is_confirmed(order)
        and order.status != OrderStatus.CANCELLED
    )


def customer_aggregates(orders: Iterable[OrderDocuments], mapping: Mapping) -> dict[str, Any]:
    """Profile properties (names with mapping.profiles.aggregate_prefix) for one customer's orders.

    Group the orders by `sync.orders.lifecycle.profile_key` first, so web-guest orders on a catch-all
    account count for the shopper's email, not for the catch-all account.
    """
    return facts_aggregates((f for docs in orders if (f := order_facts(docs, mapping)) is not None), mapping)


def facts_aggregates(orders: Iterable[OrderFacts], mapping: Mapping) -> dict[str, Any]:
    """`customer_aggregates` over the orders' durable facts (`sync.orders.facts`): the same numbers for the
    same orders, and what the fleet computes, so orders whose documents expired still count."""
    gross = Decimal(0)
    refunds = Decimal(0)
    count = 0
    dates = []
    seen: set[str] = set()
    for facts in orders:
        if facts.number in seen or not facts.counts or facts.placed_at is None:
            continue  # the same order twice (e.g. two versions handed in) counts once
        seen.add(facts.number)
        count += 1
        gross += facts.value
        refunds += facts.refunded
        dates.append(facts.placed_at)
    prefix = mapping.profiles.aggregate_prefix
    return {
        f"{prefix}order_count": count,
        f"{prefix}gross_revenue": money(gross),
        f"{prefix}refunds": money(refunds),
        f"{prefix}net_lifetime_value": money(gross - refunds),
        f"{prefix}first_order_date": min(dates).isoformat() if dates else None,
        f"{prefix}last_order_date": max(dates).isoformat() if dates else None,
    }
