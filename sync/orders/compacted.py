"""Orders whose documents were released (docs/order-lifecycle.md, "Released orders"): a closed or cancelled order
keeps its full documents for a grace period after its last change (`order_document_grace_days`), then only its
durable facts (`sync.orders.facts`). Whatever the ERP still says of it later is computed from those facts:

- a credit memo read later gets its Refunded Order like any other (the refund ids already decided are in the
  facts: a memo already given an id is not sent again, a new one never takes an id another memo has), and its
  total joins the order's refunds by memo number, so a memo read twice counts once;
- a header read again (an ERP touch, a re-scan) updates the order's status and values in its facts; the events of
  its open life (Placed, Updated, Cancelled) are not computed again;
- a pick or invoice read later changes nothing: an order is released only once closed or cancelled.

Pure: `released_header` stands in for the header's record, `released_result` computes the events and the facts.
"""

from __future__ import annotations

from decimal import Decimal

from config.mapping import Mapping
from sync.orders.desired import DeliveredView, DesiredResult, event_key, refund_operations
from sync.orders.facts import OrderFacts, order_facts
from sync.orders.lifecycle import klaviyo_order_id
from sync.orders.records import OrderDocuments, OrderHeader
from sync.orders.refund_ids import composite_id

ZERO = Decimal(0)


def profile_identity(facts: OrderFacts) -> dict[str, str]:
    """The order events' profile (`lifecycle.event_profile`) from its profile key: 'external_id:C1' -> the code."""
    kind, _, ident = facts.profile.partition(":")
    return {kind: ident}


def released_header(facts: OrderFacts) -> OrderHeader:
    """A header holding what the facts keep of it: enough for the events of its memos (ids, profile, the
    properties every order event carries); no lines, no addresses."""
    kind, _, ident = facts.profile.partition(":")
    h = facts.header
    return OrderHeader(
        key=facts.number, number=facts.number, customer=ident if kind == "external_id" else "",
        ord_type=h.ord_type, division=h.division, sales_channel=h.sales_channel, status_code="",
        status=facts.status, entered=facts.placed_at, confirmed=facts.placed_at, currency=h.currency,
        season=h.season, warehouse=h.warehouse, storefront_ref=facts.storefront_ref,
    )


def released_view(facts: OrderFacts, mapping: Mapping) -> DeliveredView:
    """What went out of the order's refunds, as its facts recorded: each decided memo's Refunded Order."""
    metric = mapping.metrics.refunded_order
    order_id = klaviyo_order_id(released_header(facts), mapping)
    keys = {event_key(metric, composite_id(facts.number, memo)) for memo in facts.refund_composite_memos}
    if facts.refund_order_id_memo is not None:
        keys.add(event_key(metric, order_id))
    return DeliveredView(keys=frozenset(keys), refund_memo_with_order_id=facts.refund_order_id_memo,
                         refund_memos_composite=frozenset(facts.refund_composite_memos))


def released_result(facts: OrderFacts, docs: OrderDocuments, header_read: bool, mapping: Mapping, *,
                    backfill: bool = False) -> tuple[DesiredResult, DeliveredView, OrderFacts]:
    """The Refunded Orders still owed for the documents read since the order was released (`docs`: its header as
    read again when `header_read`, else `released_header`; the memos read since), the view they were computed
    against, and the order's facts with those documents in them."""
    view = released_view(facts, mapping)
    if facts.placed_at is None:  # never placed: no refund of it is sent (as for a live order)
        result = DesiredResult()
    else:
        result = refund_operations(docs, view, mapping, profile_identity(facts), backfill=backfill)
    base = facts
    if header_read:
        reread = order_facts(docs.model_copy(update={"picks": (), "invoices": (), "credit_memos": ()}), mapping,
                             facts.profile)
        if reread is not None:  # the header's own numbers as the ERP says them now
            base = facts.model_copy(update={
                name: getattr(reread, name)
                for name in ("status", "placed_at", "placed_value", "cancelled_value", "storefront_ref", "header")})
    # facts stored before memo totals were kept hold only their sum, with every memo decided by then in it
    remainder = facts.refunded - sum(facts.memos.values(), ZERO)
    decided = {facts.refund_order_id_memo, *facts.refund_composite_memos}
    memos = dict(facts.memos)
    for memo in docs.credit_memos:
        if not (remainder > 0 and memo.number not in facts.memos and memo.number in decided):
            memos[memo.number] = memo.total  # by memo number: a memo read again replaces itself
    dates = {memo.number: memo.date for memo in docs.credit_memos if memo.date is not None
             and not mapping.fields.creditmemo.date}
    merged = base.model_copy(update={
        "memos": memos, "refunded": remainder + sum(memos.values(), ZERO),
        "memo_dates": {**dates, **facts.memo_dates},
    })
    return result, view, merged
