"""An order's material content (lines, quantities, prices, discount, totals) as a comparable revision.

The fleet keeps the last revision it delivered per order; a different fingerprint is a material
amendment and becomes an `Updated Order`. Only what matters to revenue and to the customer is in
it: a changed address or a status change alone is not an amendment.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from config.mapping import Mapping, OrderLifecycle
from sync.orders.records import OrderHeader
from sync.orders.skus import CENT, money, sku_of
from sync.orders.status import OrderStatus


def plain(number: Decimal) -> str:
    """Decimal as a canonical string: 10, 10.0 and 10.00 fingerprint alike."""
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


class LineState(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: str
    sku: str
    quantity: int
    price: Decimal

    @property
    def row_total(self) -> Decimal:
        return self.price * self.quantity


class Revision(BaseModel):
    """Store it with `model_dump_json()`, read it back with `Revision.model_validate_json()`."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    lines: tuple[LineState, ...]
    merchandise: Decimal
    discount_code: str
    discount: Decimal
    tax: Decimal
    freight: Decimal
    value: Decimal
    currency: str

    def line(self, seq: str) -> LineState | None:
        return next((state for state in self.lines if state.line == seq), None)


def order_value(merchandise: Decimal, discount: Decimal, tax: Decimal, freight: Decimal,
                rules: OrderLifecycle) -> Decimal:
    """The total charged: merchandise after discount, plus tax and freight when the mapping says so."""
    value = merchandise - discount
    if rules.value_includes_tax:
        value += tax
    if rules.value_includes_freight:
        value += freight
    return value.quantize(CENT)


def order_revision(order: OrderHeader, mapping: Mapping) -> Revision:
    """The order's current revision. Lines count with their open (not cancelled) quantity; lines with
    nothing left open are out. A cancelled order keeps its ordered quantities: the status says it is
    cancelled, and its Placed/Cancelled value must be what the customer had ordered, even when the
    ERP zeroes the lines on cancellation."""
    whole = order.status == OrderStatus.CANCELLED
    lines = tuple(
        LineState(line=line.line_seq, sku=sku_of(line, mapping), quantity=qty, price=line.price)
        for line in order.lines
        if (qty := line.qty if whole else line.open_qty) > 0
    )
    merchandise = sum((state.row_total for state in lines), Decimal("0"))
    value = order_value(merchandise, order.discount, order.tax, order.freight, mapping.lifecycle)
    material: dict[str, Any] = {
        "lines": [[s.line, s.sku, s.quantity, plain(s.price)] for s in lines],
        "discount_code": order.discount_code,
        "discount": plain(order.discount),
        "tax": plain(order.tax),
        "freight": plain(order.freight),
        "currency": order.currency,
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
    return Revision(
        fingerprint=digest, lines=lines, merchandise=merchandise, discount_code=order.discount_code,
        discount=order.discount, tax=order.tax, freight=order.freight, value=value, currency=order.currency,
    )


def revision_changes(old: Revision, new: Revision) -> dict[str, Any]:
    """What an amendment changed, as Klaviyo properties: totals before/after and line differences."""
    old_seqs = {s.line for s in old.lines}
    new_seqs = {s.line for s in new.lines}

    def describe(state: LineState) -> dict[str, Any]:
        return {"Line": state.line, "SKU": state.sku, "Quantity": state.quantity,
                "ItemPrice": float(state.price)}

    changed = []
    for state in new.lines:
        before = old.line(state.line)
        if before is not None and (before.quantity, before.price, before.sku) != (state.quantity, state.price,
                                                                                 state.sku):
            changed.append({
                "Line": state.line, "SKU": state.sku,
                "OldQuantity": before.quantity, "NewQuantity": state.quantity,
                "OldItemPrice": float(before.price), "NewItemPrice": float(state.price),
            })
    return {
        "PreviousValue": money(old.value),
        "NewValue": money(new.value),
        "PreviousSubtotal": money(old.merchandise - old.discount),
        "NewSubtotal": money(new.merchandise - new.discount),
        "PreviousDiscountValue": money(old.discount),
        "NewDiscountValue": money(new.discount),
        "PreviousDiscountCode": old.discount_code,
        "NewDiscountCode": new.discount_code,
        "LinesAdded": [describe(s) for s in new.lines if s.line not in old_seqs],
        "LinesRemoved": [describe(s) for s in old.lines if s.line not in new_seqs],
        "LinesChanged": changed,
        "PreviousRevision": old.fingerprint,
        "Revision": new.fingerprint,
    }
