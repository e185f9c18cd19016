"""What the fleet keeps of an order between reads, as plain types: its documents, the revision delivered and
the one in flight (stored by `state.orders.RedisOrderState`; `OrderStateStore` is the protocol flows use)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sync import json_text
from sync.orders.revision import Revision
from sync.orders.status import OrderStatus

ORDER_RESOURCES = ("order", "pick", "invoice", "creditmemo")
SEEN_KEPT = 200
FINAL_STAGES = (OrderStatus.CLOSED, OrderStatus.CANCELLED)


@dataclass
class StoredDocuments:
    """The raw documents of one order as stored (the header may be missing: children seen first)."""

    order: dict[str, Any] | None = None
    order_version: str = ""  # the poller's change version of the header as stored (docs/poller.md, "Versions")
    picks: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    credit_memos: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PendingRevision:
    revision: Revision
    keys: tuple[str, ...]


@dataclass
class OrderSnapshot:
    """Everything the order flow reads about one order before computing its events."""

    documents: StoredDocuments
    revision: Revision | None
    pending: PendingRevision | None
    refund_pin: str | None
    computed: tuple[str, ...]  # ledger keys of the events computed for it so far


def stored_documents(raw: dict[str, str]) -> StoredDocuments:
    """The `doc:<num>` hash (``<resource>:<key>`` -> entry JSON) as documents, in a stable order."""
    out = StoredDocuments()
    for ident, entry in sorted(raw.items()):
        resource = ident.split(":", 1)[0]
        parsed = json_text.loads(entry)
        record = parsed["record"]
        if resource == "order":
            out.order = record
            out.order_version = str(parsed.get("version") or "")
        elif resource == "pick":
            out.picks.append(record)
        elif resource == "invoice":
            out.invoices.append(record)
        else:
            out.credit_memos.append(record)
    return out


def pending_from_json(raw: str | None) -> PendingRevision | None:
    if not raw:
        return None
    data = json_text.loads(raw)
    return PendingRevision(Revision.model_validate(data["revision"]), tuple(data["keys"]))



class OrderStateStore(Protocol):
    """The state the order flow needs; `RedisOrderState` is the production one."""

    def order_number(self, resource: str, record: dict[str, Any]) -> str | None: ...
    def put_document(self, resource: str, record: dict[str, Any], version: str = "") -> str | None: ...
    def documents(self, number: str) -> StoredDocuments: ...
    def delivered_revision(self, number: str) -> Revision | None: ...
    def set_delivered_revision(self, number: str, revision: Revision) -> None: ...
    def pending_revision(self, number: str) -> PendingRevision | None: ...
    def set_pending_revision(self, number: str, revision: Revision, keys: Iterable[str]) -> None: ...
    def refund_pin(self, number: str) -> str | None: ...
    def set_refund_pin(self, number: str, memo: str) -> None: ...
    def note_computed(self, number: str, entries: dict[str, dict[str, Any]]) -> None: ...
    def computed(self, number: str) -> dict[str, dict[str, Any]]: ...
    def versions_seen(self, number: str) -> list[dict[str, Any]]: ...


