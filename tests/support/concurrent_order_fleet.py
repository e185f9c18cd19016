"""A model of the order fleet around the pure function, as `flows.orders` runs it with several workers: each
ERP document is read (stored) on its own, in any order; each read queues a computation of the order, and the
computations run one at a time per order (the order lock) from whatever is stored when they run; computed
operations wait in flight and are delivered in any order (the engine skips a key already in the ledger);
Klaviyo keeps the first event per (profile, metric, unique_id). State loss drops everything the fleet holds
in Redis - stored documents, ledger, revisions, refund ids, the operations in flight (the broker is in the same
Redis) - and the next reads are a re-scan. Refund ids follow the flow's rule: remembered when computed, and
for an order with memos the fleet holds nothing of, read back from Klaviyo by each event's `bcsync_key`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config.mapping import Mapping
from sync.operations import Operation
from sync.orders.desired import DeliveredView, DesiredResult, desired_operations
from sync.orders.lifecycle import klaviyo_order_id
from sync.orders.records import CreditMemo, Invoice, OrderDocuments, OrderHeader, PickTicket
from sync.orders.refund_ids import KEY_PROPERTY, SentRefunds, decided_refunds, sent_refunds
from sync.orders.revision import Revision

EventId = tuple[str, str, str]  # (profile, metric, unique_id)
DocId = tuple[str, str]  # ("order", number) | ("pick" | "invoice" | "memo", document number)
Document = OrderHeader | PickTicket | Invoice | CreditMemo


def documents_by_id(docs: OrderDocuments) -> dict[DocId, Document]:
    out: dict[DocId, Document] = {("order", docs.order.number): docs.order}
    out.update({("pick", p.number): p for p in docs.picks})
    out.update({("invoice", i.number): i for i in docs.invoices})
    out.update({("memo", m.number): m for m in docs.credit_memos})
    return out


@dataclass
class ConcurrentFleet:
    mapping: Mapping
    stored: dict[DocId, Document] = field(default_factory=dict)
    due: int = 0  # computations queued by reads, not run yet
    ledger: set[str] = field(default_factory=set)
    revision: Revision | None = None
    pending: tuple[Revision, tuple[str, ...]] | None = None
    refunds: SentRefunds | None = None  # the refund ids decided, as the order's facts hold them (None: nothing)
    in_flight: list[Operation] = field(default_factory=list)
    klaviyo: dict[EventId, dict[str, Any]] = field(default_factory=dict)
    dropped: list[tuple[Operation, dict[str, Any]]] = field(default_factory=list)  # (repeat, the event kept)
    recoveries: int = 0

    # --- reads and computations ---------------------------------------------------------------------
    def unread(self, erp: OrderDocuments) -> list[DocId]:
        """Documents whose current ERP version the fleet has not stored."""
        return sorted(i for i, doc in documents_by_id(erp).items() if self.stored.get(i) != doc)

    def read(self, erp: OrderDocuments, doc: DocId) -> None:
        self.stored[doc] = documents_by_id(erp)[doc]
        self.due += 1

    def documents(self) -> OrderDocuments | None:
        header = next((d for (kind, _), d in self.stored.items() if kind == "order"), None)
        if not isinstance(header, OrderHeader):
            return None  # a document of an order whose header was not read yet waits
        def of(kind: str) -> list[Any]:
            return [d for (k, _), d in sorted(self.stored.items()) if k == kind]
        return OrderDocuments(order=header, picks=tuple(of("pick")), invoices=tuple(of("invoice")),
                              credit_memos=tuple(of("memo")))

    def compute(self) -> tuple[DesiredResult, frozenset[str], OrderDocuments] | None:
        """One queued computation (under the order's lock): the view, the result, remembered at once.
        Returns the result, the keys delivered before it and the documents it was computed from."""
        self.due = max(0, self.due - 1)
        docs = self.documents()
        if docs is None:
            return None
        if self.pending is not None and all(k in self.ledger for k in self.pending[1]):
            self.revision, self.pending = self.pending[0], None
        held = self.refunds or SentRefunds()
        view = DeliveredView(keys=frozenset(self.ledger), revision=self.revision,
                             refund_memo_with_order_id=held.order_id_memo, refund_memos_composite=held.composite)
        if self.refunds is None and docs.credit_memos:
            sent = self.read_back(docs)
            view = view.model_copy(update={"refund_memo_with_order_id": sent.order_id_memo,
                                           "refund_memos_composite": sent.composite})
        result = desired_operations(docs, view, self.mapping)
        self.remember(result, view)
        return result, view.keys, docs

    def read_back(self, docs: OrderDocuments) -> SentRefunds:
        """What Klaviyo holds of the order's refunds, as `flows.order_refunds.KlaviyoRefunds` reads it."""
        self.recoveries += 1
        metric = self.mapping.metrics.refunded_order
        held = [p["properties"] for (_, m, _), p in self.klaviyo.items() if m == metric]
        return sent_refunds(docs.order.number, klaviyo_order_id(docs.order, self.mapping), metric, held)

    def remember(self, result: DesiredResult, view: DeliveredView) -> None:
        decided = decided_refunds(result, view)
        if decided is not None:  # as the facts' write: the pin recorded first stays, composites add up
            held = self.refunds or SentRefunds()
            pin = held.order_id_memo or decided.order_id_memo
            self.refunds = SentRefunds(pin, frozenset(m for m in held.composite | decided.composite if m != pin))
        if result.revision is not None:
            if set(result.revision_keys) - view.keys:
                self.pending = (result.revision, result.revision_keys)
            else:
                self.revision, self.pending = result.revision, None
        self.in_flight.extend(result.operations)

    # --- delivery -----------------------------------------------------------------------------------
    def deliver(self, index: int) -> None:
        op = self.in_flight.pop(index)
        if op.key in self.ledger:
            return  # the engine's ledger check
        payload = {**op.payload, "properties": {**op.payload["properties"], KEY_PROPERTY: op.key}}
        profile = payload["profile"].get("external_id") or payload["profile"]["email"]
        event_id = (profile, payload["metric"], payload["unique_id"])
        if event_id in self.klaviyo:
            self.dropped.append((op, self.klaviyo[event_id]))  # Klaviyo keeps the first
        else:
            self.klaviyo[event_id] = payload
        self.ledger.add(op.key)

    def lose_state(self) -> None:
        """Redis lost: everything but Klaviyo's copy is gone; a re-scan reads the documents again."""
        kept = self.klaviyo, self.dropped, self.recoveries
        self.__init__(self.mapping)  # type: ignore[misc]
        self.klaviyo, self.dropped, self.recoveries = kept

    def settle(self, erp: OrderDocuments) -> None:
        """Read what is unread, run every computation, deliver everything, until nothing is left."""
        for _ in range(10):
            for doc in self.unread(erp):
                self.read(erp, doc)
            while self.due:
                self.compute()
            if not self.in_flight:
                return
            while self.in_flight:
                self.deliver(0)
            self.due += 1  # one more computation: it must find nothing left to send
        raise AssertionError(f"still sending after 10 rounds: {[op.key for op in self.in_flight]}")
