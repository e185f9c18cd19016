"""A simulated delivery side for the pure function: a ledger view and a Klaviyo that keeps the first
event per (profile, metric, unique_id), as Klaviyo's de-duplication does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config.mapping import Mapping
from sync.operations import Operation
from sync.orders.desired import DeliveredView, DesiredResult, desired_operations
from sync.orders.records import OrderDocuments

EventId = tuple[str, str, str]  # (profile, metric, unique_id)


@dataclass
class Fleet:
    mapping: Mapping
    view: DeliveredView = field(default_factory=DeliveredView)
    klaviyo: dict[EventId, dict[str, Any]] = field(default_factory=dict)
    sent: list[Operation] = field(default_factory=list)
    duplicates: list[Operation] = field(default_factory=list)

    def process(self, docs: OrderDocuments, *, backfill: bool = False) -> DesiredResult:
        result = desired_operations(docs, self.view, self.mapping, backfill=backfill)
        for op in result.operations:
            assert op.key not in self.view.keys, f"re-sent {op.key}"
        self.deliver(result.operations)
        self.view = self.view.after(result)
        return result

    def deliver(self, operations: list[Operation]) -> None:
        for op in operations:
            self.sent.append(op)
            payload = op.payload
            profile = payload["profile"].get("external_id") or payload["profile"]["email"]
            event_id = (profile, payload["metric"], payload["unique_id"])
            if event_id in self.klaviyo:
                self.duplicates.append(op)  # Klaviyo drops it: harmless, but counted
            else:
                self.klaviyo[event_id] = payload

    def lose_state(self) -> None:
        self.view = DeliveredView()

    def ids(self, metric: str | None = None) -> set[str]:
        return {uid for (_, m, uid) in self.klaviyo if metric is None or m == metric}

    def event(self, metric: str, unique_id: str) -> dict[str, Any]:
        return next(p for (_, m, uid), p in self.klaviyo.items() if m == metric and uid == unique_id)
