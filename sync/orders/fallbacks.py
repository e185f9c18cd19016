"""Fallbacks for order fields the tenant does not have (docs/configuration.md, "Absent fields"), taken from ERP
data only - never from the fleet's clock, so a re-computation after a re-scan or a state loss gives the same.

- no entry date (`fields.order.entered = ""`): the confirmation date (the parser sets it);
- no credit memo date (`fields.creditmemo.date = ""`): the memo's `last_mod` as first recorded in the order's
  durable facts (`sync.orders.facts.OrderFacts.memo_dates`), else its `last_mod` now (recorded by this
  computation); which memo takes the order-level Refunded Order id goes by memo number (`memo_order_key`), not
  by those dates (a re-scan after state loss may see a later last_mod, never another number);
- no ship date on a shipped pick: its last_mod (`lifecycle.dispatch_documents`).

`fallbacks_in_use` says which of them an order's documents rely on, for `bcsync audit order`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as AnyMapping
from datetime import datetime

from config.mapping import Mapping
from sync.orders.records import CreditMemo, OrderDocuments

_DIGITS = re.compile(r"(\d+)")


def memo_order_key(number: str) -> tuple[tuple[int, int | str], ...]:
    """Memo numbers in the ERP's issuing order: digit runs compared as numbers (CM9 before CM10)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(number) if part)


def memos_in_refund_order(memos: tuple[CreditMemo, ...], mapping: Mapping) -> list[CreditMemo]:
    """The order in which memos are offered the order-level refund id: by date then number, or by number alone
    when the tenant has no memo date."""
    if not mapping.fields.creditmemo.date:
        return sorted(memos, key=lambda memo: memo_order_key(memo.number))
    return sorted(memos, key=lambda memo: (memo.date or datetime.min, memo.number))


def date_memos(docs: OrderDocuments, recorded: AnyMapping[str, datetime]) -> OrderDocuments:
    """The documents with each undated credit memo dated by its last_mod as first recorded (`recorded`, memo
    number -> instant), else its last_mod now. A memo with neither stays undated (its refund waits)."""
    undated = [memo for memo in docs.credit_memos if memo.date is None]
    if not undated:
        return docs
    memos = tuple(
        memo.model_copy(update={"date": recorded.get(memo.number) or memo.last_mod}) if memo.date is None else memo
        for memo in docs.credit_memos
    )
    return docs.model_copy(update={"credit_memos": memos})


def fallbacks_in_use(docs: OrderDocuments, mapping: Mapping,
                     recorded: AnyMapping[str, datetime] | None = None) -> list[dict[str, str]]:
    """What the order's documents take from a fallback: one entry per document and field, with the value used
    and where it came from (`recorded`: the memo dates of the order's facts)."""
    found: list[dict[str, str]] = []
    fields = mapping.fields
    order = docs.order
    if not fields.order.entered:
        found.append({"document": f"order:{order.number}", "field": "fields.order.entered",
                      "value": _iso(order.entered),
                      "source": f"the confirmation date ({fields.order.confirmed})" if order.entered
                      else "none: the order has no confirmation date"})
    if not fields.creditmemo.date:
        for memo in memos_in_refund_order(docs.credit_memos, mapping):
            kept = (recorded or {}).get(memo.number)
            source = ("its last_mod as first recorded in the order facts" if kept is not None
                      else "its last_mod now (none recorded yet)" if memo.last_mod is not None
                      else "none: no last_mod either (its refund waits)")
            found.append({"document": f"creditmemo:{memo.number}", "field": "fields.creditmemo.date",
                          "value": _iso(kept or memo.date or memo.last_mod), "source": source + "; refund id "
                          "order: memo number"})
    for pick in docs.picks:
        if pick.shipped and pick.ship_date is None and mapping.lifecycle.dispatch_document == "pick":
            found.append({"document": f"pick:{pick.number}", "field": "fields.pick.ship_date",
                          "value": _iso(pick.last_mod), "source": "its last_mod (shipped without a ship date)"})
    return found


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "-"
