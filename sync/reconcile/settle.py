"""Changes in flight are not drift: the pure part of reconciliation's re-check (`flows.reconcile`, "Settling").

A run reads Blue Cherry first and Klaviyo page by page, minutes or hours apart; during live trading a customer
created, an order placed or a consent changed in between shows as a difference until the fleet has delivered it.
The run re-checks those customers once at its end, against Blue Cherry as it is then: the orders of its
snapshot with the records Blue Cherry changed since laid over them (`merge_documents`). Which operation keys
the fleet's work on a customer goes under (`customer_work_keys`, plus its orders' event keys) tells whether it
still has work for it in the in-flight registry or a bulk buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sync.customers.consent import CHANNEL_FIELDS
from sync.customers.profiles import upsert_key
from sync.orders.records import CreditMemo, Invoice, OrderDocuments, OrderHeader, PickTicket


def customer_work_keys(code: str) -> set[str]:
    """The operation keys of the fleet's work on one customer, its orders' events aside: the profile upserts
    (`sync.customers.profiles.upsert_key`), consent per channel (`sync.customers.consent`), the ERP aggregates
    (`flows.orders.refresh_profiles`) and an erasure (`sync.customers.planner`)."""
    return {upsert_key(code, "full"), upsert_key(code, "immediate"),
            *(f"consent:{channel}:{code}" for channel in CHANNEL_FIELDS),
            f"profile-aggregates:external_id:{code}", f"erase:{code}"}


def merge_documents(snapshot: Mapping[str, OrderDocuments], headers: Iterable[OrderHeader],
                    picks: Iterable[PickTicket] = (), invoices: Iterable[Invoice] = (),
                    credit_memos: Iterable[CreditMemo] = ()) -> dict[str, OrderDocuments]:
    """The orders Blue Cherry changed since `snapshot` was read, as they are now: a changed header replaces the
    order's (a new order starts with no documents), a changed pick, invoice or credit memo replaces the one of
    its number in its order or joins it. Only the orders touched are returned; a document of an order neither
    side knows is left out (its header was unreadable)."""
    out: dict[str, OrderDocuments] = {}
    for header in headers:
        known = out.get(header.number) or snapshot.get(header.number)
        out[header.number] = (known.model_copy(update={"order": header}) if known is not None
                              else OrderDocuments(order=header))
    for name, docs in (("picks", picks), ("invoices", invoices), ("credit_memos", credit_memos)):
        for doc in docs:
            order = out.get(doc.order) or snapshot.get(doc.order)
            if order is None:
                continue
            kept = tuple(d for d in getattr(order, name) if d.number != doc.number)
            out[doc.order] = order.model_copy(update={name: (*kept, doc)})
    return out
