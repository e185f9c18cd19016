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
- ``refund_order_id_memo`` / ``refund_composite_memos``: which Refunded Order id each credit memo was given -
  the memo under the order-level id `<id>`, the memos under `<num>:refund:<memo>` (docs/order-lifecycle.md,
  "Refund ids"). Decided when the order's refunds are computed and recorded before any is sent; stored facts
  never change a decision already recorded (`state.order_facts`), so facts rebuilt from the documents keep them;
- ``memo_dates``: for a tenant without a memo date (`fields.creditmemo.date = ""`), each credit memo's date as
  first recorded (its last_mod then: `sync.orders.fallbacks`); kept like the refund ids, the first one wins;
- ``memos``: each credit memo's total (``refunded`` is their sum), and ``header``: the few header fields every
  order event carries (`EventHeader`) - what a credit memo read after the order's documents were released
  needs (`sync.orders.compacted`: its refund counted once, its Refunded Order like any other).
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
from sync.orders.refund_ids import SentRefunds
from sync.orders.revision import order_revision, order_value, plain
from sync.orders.skus import CENT
from sync.orders.status import OrderStatus

ZERO = Decimal(0)


def customer_profile_key(code: str) -> str:
    """The profile key (`lifecycle.profile_key`) of a customer's own orders: what its facts are stored under."""
    return f"external_id:{code}"


class EventHeader(BaseModel):
    """The order header fields every order event carries (`desired._OrderEvents.common`) and its currency."""

    model_config = ConfigDict(frozen=True)

    division: str = ""
    season: str = ""
    warehouse: str = ""
    ord_type: str = ""
    sales_channel: str = ""
    currency: str = ""


_HEADER = tuple(EventHeader.model_fields)


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
    refund_order_id_memo: str | None = None
    refund_composite_memos: tuple[str, ...] = ()
    memo_dates: dict[str, datetime] = {}
    memos: dict[str, Decimal] = {}  # credit memo -> its total (empty in facts stored before they were kept)
    header: EventHeader = EventHeader()

    @property
    def counts(self) -> bool:
        """Does it count in the customer's aggregates: placed and not cancelled in full."""
        return self.placed_at is not None and self.status != OrderStatus.CANCELLED

    @property
    def value(self) -> Decimal:
        """Its current value (after partial cancellations): what gross revenue counts."""
        return self.placed_value - self.cancelled_value

    @property
    def refund_ids(self) -> SentRefunds | None:
        """The refund ids its memos were given (None: no refund of it was ever computed)."""
        if self.refund_order_id_memo is None and not self.refund_composite_memos:
            return None
        return SentRefunds(self.refund_order_id_memo, frozenset(self.refund_composite_memos))


def order_facts(docs: OrderDocuments, mapping: Mapping, profile: str = "",
                refund_ids: SentRefunds | None = None) -> OrderFacts | None:
    """The facts of one order as its documents say now (None: outside the mapping's filters), with the
    refund ids its computation gave its memos (`sync.orders.refund_ids.decided_refunds`)."""
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
        memos={memo.number: memo.total for memo in docs.credit_memos},
        header=EventHeader(division=order.division, season=order.season, warehouse=order.warehouse,
                           ord_type=order.ord_type, sales_channel=order.sales_channel, currency=order.currency),
        storefront_ref=order.storefront_ref,
        refund_order_id_memo=refund_ids.order_id_memo if refund_ids else None,
        refund_composite_memos=tuple(sorted(refund_ids.composite)) if refund_ids else (),
        # the dates the fallback gave undated memos (`fallbacks.date_memos`): recorded so they stay the first
        memo_dates={} if mapping.fields.creditmemo.date else {
            memo.number: memo.date for memo in docs.credit_memos if memo.date is not None},
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
        if short == "rf" and facts.memos and sum(facts.memos.values(), ZERO) == amount:
            continue  # the memos' sum: not stored twice
        if amount:
            body[short] = plain(amount)  # exact decimal text: sums are the same as over the documents
    if facts.storefront_ref:
        body["sf"] = facts.storefront_ref
    if facts.refund_order_id_memo is not None:
        body["ro"] = facts.refund_order_id_memo
    if facts.refund_composite_memos:
        body["rc"] = list(facts.refund_composite_memos)
    if facts.memo_dates:
        body["md"] = {memo: moment.isoformat() for memo, moment in sorted(facts.memo_dates.items())}
    if facts.memos:
        body["rm"] = {memo: plain(total) for memo, total in sorted(facts.memos.items())}
    header = [getattr(facts.header, name) for name in _HEADER]
    while header and not header[-1]:
        header.pop()
    if header:  # one string where no value holds the separator (a few bytes less per order)
        body["h"] = "|".join(header) if not any("|" in value for value in header) else header
    return json.dumps(body, separators=(",", ":"))


def decode_facts(number: str, profile: str, raw: str | bytes) -> OrderFacts:
    body = json.loads(raw)
    memos = {memo: Decimal(total) for memo, total in body.get("rm", {}).items()}
    refunded = Decimal(body["rf"]) if "rf" in body else sum(memos.values(), ZERO)
    return OrderFacts(
        number=number,
        profile=profile,
        status=OrderStatus(body["st"]),
        placed_at=datetime.fromisoformat(body["t"]) if body.get("t") else None,
        placed_value=Decimal(body.get("pv", "0")),
        cancelled_value=Decimal(body.get("cv", "0")),
        shipped_value=Decimal(body.get("sv", "0")),
        refunded=refunded,
        storefront_ref=body.get("sf", ""),
        refund_order_id_memo=body.get("ro"),
        refund_composite_memos=tuple(body.get("rc", ())),
        memo_dates={memo: datetime.fromisoformat(text) for memo, text in body.get("md", {}).items()},
        memos=memos,
        header=EventHeader(**dict(zip(_HEADER, _header_values(body.get("h", ())), strict=False))),
    )


def _header_values(stored: str | list[str]) -> list[str]:
    return stored.split("|") if isinstance(stored, str) else list(stored)
