"""The lifecycle rules that do not depend on what was delivered: which orders are ours, whose profile
an order belongs to, whether it was confirmed, what its Klaviyo order id is, and which ERP documents
count as dispatch."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from config.mapping import Mapping
from sync.orders.problems import RecordProblem
from sync.orders.records import DocumentLine, OrderDocuments, OrderHeader
from sync.orders.status import OrderStatus, classify_status

__all__ = [
    "DispatchDocument",
    "OrderStatus",
    "classify_status",
    "confirmation_time",
    "dispatch_documents",
    "event_profile",
    "exclusion_reason",
    "is_confirmed",
    "klaviyo_order_id",
    "profile_key",
]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def exclusion_reason(order: OrderHeader, mapping: Mapping) -> str | None:
    """Why the mapping's filters leave this order out (None = it is ours). Empty filter = all."""
    rules = mapping.lifecycle
    checks = (
        ("order type", order.ord_type, rules.order_types),
        ("division", order.division, rules.divisions),
        ("sales channel", order.sales_channel, rules.sales_channels),
    )
    for label, value, allowed in checks:
        if allowed and value not in allowed:
            return f"{label} {value!r} is not in {list(allowed)}"
    return None


def is_confirmed(order: OrderHeader) -> bool:
    """Was the order ever confirmed in the ERP? Open/closed statuses say so; for an order now on hold
    or cancelled, the confirmation date does (a hold or cancellation after confirmation does not undo
    the placement; one before it means the order was never placed)."""
    if order.status in (OrderStatus.CONFIRMED, OrderStatus.CLOSED):
        return True
    return order.status in (OrderStatus.ON_HOLD, OrderStatus.CANCELLED) and order.confirmed is not None


def confirmation_time(order: OrderHeader) -> datetime:
    """The confirmation date; an order confirmed without one falls back to its entry date (stable,
    unlike last_mod, so recomputing never moves the event). Asked only of confirmed orders: the parser refuses
    a confirmed order with neither (possible only when the mapping has no entry date)."""
    moment = order.confirmed or order.entered
    if moment is None:
        raise ValueError(f"order {order.number}: neither a confirmation nor an entry date")
    return moment


def klaviyo_order_id(order: OrderHeader, mapping: Mapping) -> str:
    """The order-level unique_id (Placed, Cancelled, first Refunded): the storefront reference when the
    tenant uses it and the order carries one, else the ERP order number."""
    if mapping.lifecycle.use_storefront_ref and order.storefront_ref:
        return order.storefront_ref
    return order.number


def _email_of(order: OrderHeader) -> str:
    for address in (order.bill_to, order.ship_to):
        if address and address.email:
            return address.email.strip().lower()
    return ""


def event_profile(order: OrderHeader, mapping: Mapping) -> dict[str, str] | RecordProblem:
    """Profile identifiers for the order's events. Catch-all accounts (web guests) are identified by the
    shopper's bill-to email only; everyone else by customer code alone."""
    email = _email_of(order)
    valid = bool(_EMAIL.match(email))
    if order.customer in mapping.lifecycle.catch_all_customers:
        if not valid:
            field = mapping.fields.order.addresses.email
            reason = (
                f"order on catch-all account {order.customer!r} has "
                + (f"an invalid bill-to email {email!r}" if email else "no bill-to email")
                + ": cannot tell whose profile it is"
            )
            return RecordProblem(order.record_key, field, reason, "customer_mismatch")
        return {"email": email}
    # a customer's events name its profile by external_id here and by the profile's Klaviyo id once
    # delivered (`Operation.profile_of`): never by the bill-to email, which may be someone else's
    return {"external_id": order.customer}


def profile_key(order: OrderHeader, mapping: Mapping) -> str | None:
    """Which profile the order counts for in ERP aggregates: 'external_id:<code>' or 'email:<email>'."""
    profile = event_profile(order, mapping)
    if isinstance(profile, RecordProblem):
        return None
    if "external_id" in profile:
        return f"external_id:{profile['external_id']}"
    return f"email:{profile['email']}"


class DispatchDocument(BaseModel):
    """A document that proves goods left: a shipped pick ticket or an invoice, per the mapping."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["pick", "invoice"]
    number: str
    time: datetime
    carrier: str
    tracking: str
    lines: tuple[DocumentLine, ...]

    @property
    def record_key(self) -> str:
        return f"{self.kind}:{self.number}"


def dispatch_documents(
    docs: OrderDocuments, mapping: Mapping
) -> tuple[list[DispatchDocument], list[RecordProblem]]:
    """The order's dispatch documents in time order (then number). A shipped pick without a ship
    date falls back to its last_mod; with neither it is a problem and waits."""
    found: list[DispatchDocument] = []
    problems: list[RecordProblem] = []
    if mapping.lifecycle.dispatch_document == "pick":
        for pick in docs.picks:
            if not pick.shipped:
                continue
            when = pick.ship_date or pick.last_mod
            if when is None:
                problems.append(RecordProblem(
                    f"pick:{pick.number}", mapping.fields.pick.ship_date,
                    "shipped pick ticket without ship date",
                ))
                continue
            found.append(DispatchDocument(
                kind="pick", number=pick.number, time=when, carrier=pick.carrier,
                tracking=pick.tracking, lines=pick.lines,
            ))
    else:
        for invoice in docs.invoices:
            found.append(DispatchDocument(
                kind="invoice", number=invoice.number, time=invoice.date, carrier=invoice.carrier,
                tracking=invoice.tracking, lines=invoice.lines,
            ))
    found.sort(key=lambda doc: (doc.time, doc.number))
    return found, problems
