"""An order's Blue Cherry documents as finance reads them, for `bcsync audit order`: one row per document (the
order, its pick tickets, invoices and credit memos) with its number, date, amount and what else identifies it,
and the events sent to Klaviyo named by the document they came from - never by a hash.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sync.orders.records import OrderDocuments

KIND_NAMES = {"order": "order", "pick": "pick ticket", "invoice": "invoice", "creditmemo": "credit memo",
              "line": "line"}


def money(amount: Decimal | float | str | None) -> str:
    """`1,234.50`; `-` when there is none."""
    if amount is None or amount == "":
        return "-"
    return f"{Decimal(str(amount)):,.2f}"


def day_and_time(moment: dt.datetime | str | None) -> str:
    """`2026-03-02 14:30` in UTC (finance's documents are dated; the minute tells two events of a day apart)."""
    if moment is None or moment == "":
        return "-"
    when = dt.datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M")


def _units(lines: Any) -> str:
    count = sum(line.qty - line.cancel_qty for line in lines)
    return f"{count} unit{'' if count == 1 else 's'}"


def document_rows(docs: OrderDocuments) -> list[dict[str, str]]:
    """The order and every document of it, oldest kind first: kind, number, date, amount, details."""
    order = docs.order
    merchandise = sum(((line.qty - line.cancel_qty) * line.price for line in order.lines), Decimal(0))
    total = merchandise - order.discount + order.tax + order.freight
    rows = [{"kind": "order", "number": order.number, "date": day_and_time(order.confirmed or order.entered),
             "amount": money(total),
             "details": f"status {order.status.value} ({order.status_code}); merchandise {money(merchandise)}, "
                        f"discount {money(order.discount)}, tax {money(order.tax)}, freight {money(order.freight)}; "
                        f"{_units(order.lines)} on {len(order.lines)} lines"}]
    for pick in docs.picks:
        carrier = " ".join(part for part in (pick.carrier, pick.tracking) if part)
        rows.append({"kind": "pick", "number": pick.number, "date": day_and_time(pick.ship_date), "amount": "-",
                     "details": ", ".join(part for part in (
                         "shipped" if pick.shipped else f"not shipped (status {pick.status or '-'})",
                         _units(pick.lines), carrier,
                         f"invoice {pick.invoice}" if pick.invoice else "") if part)})
    for invoice in docs.invoices:
        rows.append({"kind": "invoice", "number": invoice.number, "date": day_and_time(invoice.date),
                     "amount": money(invoice.total),
                     "details": f"merchandise {money(invoice.merchandise)}, tax {money(invoice.tax)}, freight "
                                f"{money(invoice.freight)}; {_units(invoice.lines)}"
                                + (f"; pick ticket {invoice.pick}" if invoice.pick else "")})
    for memo in docs.credit_memos:
        rows.append({"kind": "creditmemo", "number": memo.number, "date": day_and_time(memo.date),
                     "amount": money(-memo.total),
                     "details": ", ".join(part for part in (
                         f"against invoice {memo.invoice}" if memo.invoice else "",
                         f"reason {memo.reason or memo.reason_code}" if memo.reason or memo.reason_code else "",
                         f"tax {money(memo.tax)}, freight {money(memo.freight)}",
                         _units(memo.lines) + (" restocked" if memo.restock else "")) if part)})
    return rows


def document_of(entry: dict[str, Any]) -> str:
    """The Blue Cherry document an event came from, as finance names it: `invoice INV1`, `order SO1 line 2`
    (the operation's record: `invoice:INV1`, `order:SO1/line:2`)."""
    record = str(entry.get("record") or "")
    if not record:
        return "-"
    parts = (part.partition(":") for part in record.split("/"))
    return " ".join(f"{KIND_NAMES.get(kind, kind)} {ident}".strip() for kind, _, ident in parts)
