"""Desired state of one order in Klaviyo, minus what the ledger has delivered.

`desired_operations` is pure: from the order's current ERP documents and a view of the delivery
ledger it returns the events still to send, in lifecycle order, each with a deterministic
`unique_id`, so recomputing after a retry, a re-scan, out-of-order processing or lost state never
sends anything twice (see docs/order-lifecycle.md for the rules and the id scheme).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from config.lanes import Lane
from config.mapping import Mapping
from sync.address import Address
from sync.operations import Operation
from sync.orders.fallbacks import memos_in_refund_order
from sync.orders.lifecycle import (
    DispatchDocument,
    confirmation_time,
    dispatch_documents,
    event_profile,
    exclusion_reason,
    is_confirmed,
    klaviyo_order_id,
)
from sync.orders.problems import RecordProblem
from sync.orders.records import CreditMemo, DocumentLine, OrderDocuments, OrderHeader
from sync.orders.revision import Revision, money, order_revision, revision_changes
from sync.orders.skus import ProductInfo, item_properties, item_summary
from sync.orders.status import OrderStatus


def event_key(metric: str, unique_id: str) -> str:
    """The ledger key of an event operation."""
    return f"event:{metric}:{unique_id}"


class DeliveredView(BaseModel):
    """What the ledger says about one order.

    keys: ledger keys of this order's delivered event operations.
    revision: the last revision delivered (the baseline for Updated Order); None after lost state.
    refund_memo_with_order_id: the credit memo whose Refunded Order carries the order-level unique_id,
        decided when the order's first refund was computed (kept by the fleet, or recovered from Klaviyo
        after state loss); it pins that id to that memo for good.
    refund_memos_composite: memos whose Refunded Order already has its composite id
        (`<num>:refund:<memo>`): none of them may take the order-level id.
    refund_ids_unknown: what went out cannot be told now (state lost and Klaviyo did not answer): no
        refund is computed until it can be.
    """

    model_config = ConfigDict(frozen=True)

    keys: frozenset[str] = frozenset()
    revision: Revision | None = None
    refund_memo_with_order_id: str | None = None
    refund_memos_composite: frozenset[str] = frozenset()
    refund_ids_unknown: bool = False

    def decided(self, result: DesiredResult) -> DeliveredView:
        """The view once the result's refund ids are remembered (at computation, before any is sent): the
        memo given the order-level id keeps it and every other memo keeps its composite id."""
        if not result.refund_ids:
            return self
        pinned = self.refund_memo_with_order_id or result.refund_memo_with_order_id
        composite = {memo for memo in result.refund_ids if memo != pinned}
        return self.model_copy(update={"refund_memo_with_order_id": pinned,
                                       "refund_memos_composite": self.refund_memos_composite | composite})

    def after(self, result: DesiredResult, delivered: Iterable[Operation] | None = None) -> DeliveredView:
        """The view once `delivered` (default: all) of the result's operations were delivered: what
        the ledger must record. The revision moves only when no Placed/Updated of the result is
        still outstanding."""
        sent = list(result.operations if delivered is None else delivered)
        keys = self.keys | {op.key for op in sent}
        pinned = self.refund_memo_with_order_id
        if result.refund_memo_with_order_id and result.refund_key in keys:
            pinned = result.refund_memo_with_order_id
        outstanding = {op.key for op in result.operations} - keys
        revision = self.revision
        if result.revision is not None and not outstanding & set(result.revision_keys):
            revision = result.revision
        return self.model_copy(update={"keys": frozenset(keys), "revision": revision,
                                       "refund_memo_with_order_id": pinned})


class DesiredResult(BaseModel):
    """operations: still to send, in lifecycle order (an order's operations must be delivered in
        list order: Cancelled/Refunded rely on the Placed before them).
    revision: record it as the order's last delivered revision once the operations whose keys are in
        `revision_keys` (its Placed/Updated) are delivered; None = leave the stored one as it is.
    refund_memo_with_order_id / refund_key: the memo carrying the order-level refund id and that
        event's ledger key.
    refund_ids: credit memo -> the unique_id of its Refunded Order, for every memo of the order; remember
        them (and the pin) when the result is computed, before anything is sent.
    excluded: why the order is outside the mapping's filters (then nothing else is set).
    """

    operations: list[Operation] = []
    revision: Revision | None = None
    revision_keys: tuple[str, ...] = ()
    refund_memo_with_order_id: str | None = None
    refund_key: str | None = None
    refund_ids: dict[str, str] = {}
    problems: tuple[RecordProblem, ...] = ()
    excluded: str | None = None


def _address(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    name = address.name or ""
    first, _, last = name.partition(" ")
    return {
        "Name": name, "FirstName": first, "LastName": last,
        "Address1": address.address1 or "", "Address2": address.address2 or "", "City": address.city or "",
        "Region": address.region or "", "Zip": address.zip or "", "Country": address.country or "",
        "Phone": address.phone or "", "Email": address.email or "",
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class _OrderEvents:
    """Builds the event operations of one order, skipping what the ledger has delivered."""

    def __init__(self, docs: OrderDocuments, delivered: DeliveredView, mapping: Mapping,
                 catalog: ProductInfo | None, profile: dict[str, str], backfill: bool) -> None:
        self.order = docs.order
        self.docs = docs
        self.delivered = delivered
        self.mapping = mapping
        self.catalog = catalog
        self.profile = profile
        self.backfill = backfill
        self.order_id = klaviyo_order_id(self.order, mapping)
        self.operations: list[Operation] = []

    def key(self, metric: str, unique_id: str) -> str:
        return event_key(metric, unique_id)

    def add(self, metric: str, unique_id: str, *, time: datetime, properties: dict[str, Any],
            value: float | None, record: str, version: datetime | None, lane: Lane = "default") -> str:
        key = self.key(metric, unique_id)
        if key in self.delivered.keys:
            return key
        payload = {
            "metric": metric,
            "profile": dict(self.profile),
            "properties": properties,
            "time": time.isoformat(),
            "value": value,
            "value_currency": self.order.currency or self.mapping.tenant.currency,
            "unique_id": unique_id,
            "backfill": self.backfill,
        }
        self.operations.append(Operation(
            kind="event", key=key, lane="batch" if self.backfill else lane, payload=payload,
            version=_iso(version), record=record, profile_of=self.profile.get("external_id"),
        ))
        return key

    def common(self) -> dict[str, Any]:
        """Properties every order event carries: the join keys and the ERP extras."""
        order = self.order
        return {
            "OrderId": self.order_id,
            "ErpOrderNumber": order.number,
            "Division": order.division,
            "Season": order.season,
            "Warehouse": order.warehouse,
            "OrderType": order.ord_type,
            "SalesChannel": order.sales_channel,
            "SourceSystem": self.mapping.tenant.source_system,
        }

    def items(self, lines: Iterable[tuple[DocumentLine, int]]) -> list[dict[str, Any]]:
        return [item_properties(line, qty, self.mapping, self.catalog) for line, qty in lines]

    def order_lines(self, revision: Revision) -> list[tuple[DocumentLine, int]]:
        by_seq = {line.line_seq: line for line in self.order.lines}
        return [(by_seq[state.line], state.quantity) for state in revision.lines]

    # --- the events, one method each ---------------------------------------------------------

    def placed(self, revision: Revision) -> str:
        order = self.order
        items = self.items(self.order_lines(revision))
        properties = {
            **self.common(),
            "Items": items,
            **item_summary(items),
            "DiscountCode": order.discount_code,
            "DiscountValue": money(order.discount),
            "Merchandise": money(revision.merchandise),
            "Subtotal": money(revision.merchandise - order.discount),
            "Tax": money(order.tax),
            "Freight": money(order.freight),
            "BillingAddress": _address(order.bill_to),
            "ShippingAddress": _address(order.ship_to),
            "Revision": revision.fingerprint,
        }
        return self.add(self.mapping.metrics.placed_order, self.order_id, time=confirmation_time(order),
                        properties=properties, value=money(revision.value), record=order.record_key,
                        version=order.last_mod)

    def ordered_products(self, revision: Revision) -> list[str]:
        keys = []
        for line, qty in self.order_lines(revision):
            item = item_properties(line, qty, self.mapping, self.catalog)
            keys.append(self.add(
                self.mapping.metrics.ordered_product, f"{self.order.number}:{line.line_seq}",
                time=confirmation_time(self.order), properties={**self.common(), **item},
                value=item["RowTotal"], record=f"{self.order.record_key}/line:{line.line_seq}",
                version=self.order.last_mod,
            ))
        return keys

    def updated(self, old: Revision, new: Revision) -> str:
        items = self.items(self.order_lines(new))
        properties = {**self.common(), **revision_changes(old, new), "Items": items, **item_summary(items)}
        return self.add(
            self.mapping.metrics.updated_order, f"{self.order.number}:updated:{new.fingerprint}",
            time=self.order.last_mod or confirmation_time(self.order), properties=properties,
            value=money(new.value), record=self.order.record_key, version=self.order.last_mod,
        )

    def fulfilled(self, documents: list[DispatchDocument], revision: Revision) -> None:
        ordered_units = sum(state.quantity for state in revision.lines)
        shipped_so_far = 0
        for doc in documents:
            shipped = [(line, line.qty) for line in doc.lines if line.qty > 0]
            shipped_so_far += sum(qty for _, qty in shipped)
            items = self.items(shipped)
            properties = {
                **self.common(),
                "DispatchDocument": doc.number,
                "DispatchDocumentType": doc.kind,
                "Carrier": doc.carrier,
                "TrackingNumber": doc.tracking,
                "Items": items,
                **item_summary(items),
                "ItemsShipped": sum(qty for _, qty in shipped),
                "Partial": shipped_so_far < ordered_units,
            }
            self.add(
                self.mapping.metrics.fulfilled_order, f"{self.order.number}:fulfilled:{doc.number}",
                time=doc.time, properties=properties,
                value=money(sum((line.price * qty for line, qty in shipped), Decimal(0))),
                record=doc.record_key, version=None,
            )

    def cancelled(self, revision: Revision, lane: Lane) -> str:
        announced = self.delivered.revision or revision
        properties = {**self.common(), "Reason": "Cancelled in ERP", "StatusCode": self.order.status_code,
                      "Items": self.items(self.order_lines(revision))}
        return self.add(
            self.mapping.metrics.cancelled_order, self.order_id,
            time=self.order.last_mod or confirmation_time(self.order), properties=properties,
            value=money(announced.value), record=self.order.record_key, version=self.order.last_mod,
            lane=lane,
        )

    def refunds(self) -> tuple[str | None, str | None, dict[str, str]]:
        """Refunded Order per credit memo; returns (memo carrying the order id, its ledger key, memo -> id).

        The order-level id goes to the memo it already went to (the pin); with none, to the earliest memo
        (date, then number) that has no composite id yet. Every other memo gets its composite id."""
        memos = [memo for memo in memos_in_refund_order(self.docs.credit_memos, self.mapping) if memo.date]
        if not memos or self.delivered.refund_ids_unknown:
            return None, None, {}
        pinned = self.delivered.refund_memo_with_order_id
        free = [memo.number for memo in memos if memo.number not in self.delivered.refund_memos_composite]
        primary = pinned if pinned is not None else (free[0] if free else None)
        primary_key = self.key(self.mapping.metrics.refunded_order, self.order_id)
        ids: dict[str, str] = {}
        for memo in memos:
            assert memo.date is not None  # undated memos (no date in the mapping, no last_mod) were left out
            composite = f"{self.order.number}:refund:{memo.number}"
            unique_id = self.order_id if memo.number == primary else composite
            ids[memo.number] = unique_id
            self.add(self.mapping.metrics.refunded_order, unique_id, time=memo.date,
                     properties=self.refund_properties(memo), value=money(memo.total),
                     record=f"creditmemo:{memo.number}", version=memo.last_mod)
        if primary not in ids:
            return None, None, ids
        return primary, primary_key, ids

    def refund_properties(self, memo: CreditMemo) -> dict[str, Any]:
        items = self.items((line, line.qty) for line in memo.lines if line.qty > 0)
        return {
            **self.common(),
            "CreditMemo": memo.number,
            "Invoice": memo.invoice,
            "Reason": memo.reason,
            "ReasonCode": memo.reason_code,
            "Restocked": memo.restock,
            "Tax": money(memo.tax),
            "Freight": money(memo.freight),
            "Items": items,
            **item_summary(items),
        }


def desired_operations(
    order_docs: OrderDocuments,
    delivered: DeliveredView,
    mapping: Mapping,
    catalog: ProductInfo | None = None,
    *,
    backfill: bool = False,
) -> DesiredResult:
    """The events this order still needs in Klaviyo, in lifecycle order:
    Placed, Ordered Product per line, Updated, Fulfilled per dispatch document, Cancelled, Refunded per
    credit memo. `backfill=True` marks every event `backfill` (no flows fire) and puts it on the batch lane.
    """
    order: OrderHeader = order_docs.order
    excluded = exclusion_reason(order, mapping)
    if excluded is not None:
        return DesiredResult(excluded=excluded)
    profile = event_profile(order, mapping)
    if isinstance(profile, RecordProblem):
        return DesiredResult(problems=(profile,))

    storefront_places = order.sales_channel in mapping.lifecycle.storefront_sends_placed
    if storefront_places and mapping.lifecycle.use_storefront_ref and not order.storefront_ref:
        # the storefront's Placed Order carries its own reference: anything sent under the ERP number would
        # match no order in Klaviyo (a Cancelled or Refunded that flows never connect). Wait for the reference.
        return DesiredResult(problems=(RecordProblem(
            f"order:{order.number}", mapping.fields.order.storefront_ref,
            f"{order.sales_channel} order without its storefront reference: its Cancelled / Refunded / "
            "Fulfilled events would match no Placed Order in Klaviyo, so they wait until Blue Cherry has it",
            type="storefront_ref_missing"),))
    events = _OrderEvents(order_docs, delivered, mapping, catalog, profile, backfill)
    metrics = mapping.metrics
    placed_delivered = events.key(metrics.placed_order, events.order_id) in delivered.keys
    confirmed = is_confirmed(order)
    placing_now = confirmed and not storefront_places and not placed_delivered
    # "Placed" = Klaviyo has (or is about to get, from us or from the storefront) the Placed Order.
    if not (placed_delivered or placing_now or (storefront_places and confirmed)):
        return DesiredResult()

    current = order_revision(order, mapping)
    cancelled = order.status == OrderStatus.CANCELLED
    revision_keys: list[str] = []
    if placing_now:
        revision_keys.append(events.placed(current))
    if not storefront_places:
        events.ordered_products(current)
    baseline = delivered.revision
    amended = baseline is not None and baseline.fingerprint != current.fingerprint
    if baseline is not None and amended and not cancelled and not placing_now:
        revision_keys.append(events.updated(baseline, current))

    documents, problems = dispatch_documents(order_docs, mapping)
    events.fulfilled(documents, current)
    if cancelled:
        # Cancelled rides with the Placed it follows when both go now, so one lane keeps their order.
        events.cancelled(current, lane="default" if placing_now else "fast")
    memo, refund_key, refund_ids = events.refunds()
    problems += [RecordProblem(f"creditmemo:{m.number}", mapping.fields.creditmemo.date,
                               "no date: the mapping has no memo date and the memo no last_mod; its refund waits")
                 for m in order_docs.credit_memos if m.date is None]
    return DesiredResult(
        operations=events.operations,
        revision=None if cancelled else current,
        revision_keys=tuple(revision_keys),
        refund_memo_with_order_id=memo,
        refund_key=refund_key,
        refund_ids=refund_ids,
        problems=tuple(problems),
    )


def refund_operations(order_docs: OrderDocuments, delivered: DeliveredView, mapping: Mapping,
                      profile: dict[str, str], *, backfill: bool = False) -> DesiredResult:
    """Only the Refunded Order events of an order's credit memos still to send (`refunds` of `desired_operations`),
    for an order whose other documents were released (`sync.orders.compacted`): its profile as recorded."""
    events = _OrderEvents(order_docs, delivered, mapping, None, profile, backfill)
    memo, refund_key, refund_ids = events.refunds()
    problems = tuple(RecordProblem(f"creditmemo:{m.number}", mapping.fields.creditmemo.date,
                                   "no date: the mapping has no memo date and the memo no last_mod; its refund waits")
                     for m in order_docs.credit_memos if m.date is None)
    return DesiredResult(operations=events.operations, refund_memo_with_order_id=memo, refund_key=refund_key,
                         refund_ids=refund_ids, problems=problems)
