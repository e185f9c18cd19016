"""Durable per-order facts: the few numbers of an order that the customer's lifetime aggregates need, kept for
as long as the customer exists (the full documents expire once the order can no longer change).

`order_facts` builds them from an order's parsed documents; `encode_facts` / `decode_facts` are their compact
stored form (one JSON object, empty fields left out, the order number and profile key being the hash field and
key they are stored under: `state.order_facts`). `sync.orders.aggregates.facts_aggregates` sums them.

What the facts hold, and why each:
- ``placed_at``: the confirmation time when the order was ever placed (confirmed), else none: whether it counts
  and the first / last order dates;
- ``placed_value``: the value of everything ordered (every line at its ordered quantity, with discount, tax and
  freight as the mapping's value flags say); ``cancelled_value``: what cancellations took off it (all of it for
  an order cancelled in full), so the order's current value, its gross revenue, is the difference;
- ``shipped_value``: the merchandise on its dispatch documents; ``refunded``: all its credit memos;
- ``status``: its lifecycle stage; ``storefront_ref``: the storefront's order reference, if any;
- ``refund_ids_sent``: the Refunded Order unique_ids known to have gone out (filled by the refund logic;
  stored facts only ever gain ids, see `state.order_facts`).
An order outside the mapping's filters has no facts (`order_facts` returns None).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from config.mapping import Mapping
from sync.orders.lifecycle import confirmation_time, dispatch_documents, exclusion_reason, is_confirmed
from sync.orders.records import OrderDocuments
from sync.orders.revision import order_revision, order_value, plain
from sync.orders.skus import CENT
from sync.orders.status import OrderStatus

ZERO = Decimal(0)


def customer_profile_key(code: str) -> str:
    """The profile key (`lifecycle.profile_key`) of a customer's own orders: what its facts are stored under."""
    return f"external_id:{code}"


class OrderFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str
    profile: str  # `lifecycle.profile_key`: whose aggregates the order counts for ("" when it cannot tell)
    status: OrderStatus
    placed_at: datetime | None = None
    placed_value: Decimal = ZERO
    cancelled_value: Decimal = ZERO
    shipped_value: Decimal = ZERO
    refunded: Decimal = ZERO
    storefront_ref: str = ""
    refund_ids_sent: tuple[str, ...] = ()

    @property
    def counts(self) -> bool:
        """Does it count in the customer's aggregates: placed and not cancelled in full."""
        return self.placed_at is not None and self.status != OrderStatus.CANCELLED

    @property
    def value(self) -> Decimal:
        """Its current value (after partial cancellations): what gross revenue counts."""
        return self.placed_value - self.cancelled_value


def order_facts(docs: OrderDocuments, mapping: Mapping, profile: str = "",
                refund_ids_sent: tuple[str, ...] = ()) -> OrderFacts | None:
    """The facts of one order as its documents say now (None: outside the mapping's filters)."""
    order = docs.order
    if exclusion_reason(order, mapping) is not None:
        return None
    merchandise = sum((line.price * line.qty for line in order.lines if line.qty > 0), ZERO)
    placed = order_value(merchandise, order.discount, order.tax, order.freight, mapping.lifecycle)
    # a cancelled order's revision keeps its ordered quantities: the whole value was cancelled
    current = ZERO if order.status == OrderStatus.CANCELLED else order_revision(order, mapping).value
    dispatched, _ = dispatch_documents(docs, mapping)  # a pick without a date is the order flow's problem
    shipped = sum((line.price * line.qty for doc in dispatched for line in doc.lines if line.qty > 0), ZERO)
    return OrderFacts(
        number=order.number,
        profile=profile,
        status=order.status,
        placed_at=confirmation_time(order) if is_confirmed(order) else None,
        placed_value=placed,
        cancelled_value=placed - current,
        shipped_value=shipped.quantize(CENT),
        refunded=sum((memo.total for memo in docs.credit_memos), ZERO),
        storefront_ref=order.storefront_ref,
        refund_ids_sent=tuple(sorted(set(refund_ids_sent))),
    )


# --- the stored form: short names, empty fields left out --------------------------------------------------

_AMOUNTS = {"pv": "placed_value", "cv": "cancelled_value", "sv": "shipped_value", "rf": "refunded"}


def encode_facts(facts: OrderFacts) -> str:
    """Compact JSON of the facts without number and profile (the store's hash field and key)."""
    body: dict[str, object] = {"st": facts.status.value}
    if facts.placed_at is not None:
        body["t"] = facts.placed_at.isoformat()
    for short, name in _AMOUNTS.items():
        amount: Decimal = getattr(facts, name)
        if amount:
            body[short] = plain(amount)  # exact decimal text: sums are the same as over the documents
    if facts.storefront_ref:
        body["sf"] = facts.storefront_ref
    if facts.refund_ids_sent:
        body["ri"] = list(facts.refund_ids_sent)
    return json.dumps(body, separators=(",", ":"))


def decode_facts(number: str, profile: str, raw: str | bytes) -> OrderFacts:
    body = json.loads(raw)
    return OrderFacts(
        number=number,
        profile=profile,
        status=OrderStatus(body["st"]),
        placed_at=datetime.fromisoformat(body["t"]) if body.get("t") else None,
        placed_value=Decimal(body.get("pv", "0")),
        cancelled_value=Decimal(body.get("cv", "0")),
        shipped_value=Decimal(body.get("sv", "0")),
        refunded=Decimal(body.get("rf", "0")),
        storefront_ref=body.get("sf", ""),
        refund_ids_sent=tuple(body.get("ri", ())),
    )
