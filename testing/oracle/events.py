"""The event rows of the diff: missing, extra, duplicated, wrong value, and events on the wrong profile."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from testing.oracle.expected import ExpectedState, PlacedOrder
from testing.oracle.findings import CENT, EventKey, Finding


def label(key: EventKey) -> str:
    return f"event:{key[0]}:{key[1]}"


def moment(event: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(event.get("time"))).astimezone(UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def close(a: object, b: object) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) <= CENT


class EventCheck:
    def __init__(self, expected: ExpectedState, events: dict[str, list[dict[str, Any]]],
                 owners_of: dict[str, set[str]]) -> None:
        self.expected, self.rules, self.owners_of = expected, expected.rules, owners_of
        self.actual: dict[EventKey, list[dict[str, Any]]] = defaultdict(list)
        for metric, stored in events.items():
            if metric in self.rules.metrics:  # other integrations' metrics are not ours to judge
                for event in stored:
                    unique_id = event.get("unique_id") or f"(no unique_id, event {event.get('id')})"
                    self.actual[(metric, str(unique_id))].append(event)
        self.updates: dict[str, list[EventKey]] = defaultdict(list)  # order number -> its Updated Orders
        for metric, unique_id in self.actual:
            if metric == self.rules.updated_order:
                self.updates[unique_id.split(":updated:")[0]].append((metric, unique_id))
        self.found: list[Finding] = []
        self.handled: set[EventKey] = set()

    def findings(self) -> list[Finding]:
        for key, stored in self.actual.items():
            if len(stored) > 1:
                profiles = sorted(str(event.get("profile_id")) for event in stored)
                self.add("events_duplicated", label(key), 1, len(stored), f"stored on profiles {profiles}")
        for key, wanted in self.expected.events.items():
            if key[0] == self.rules.refunded_order:
                continue  # per order, below: which memo holds the order-level id is history
            self.handled.add(key)
            event = self.event(key, wanted.owner)
            if event is None:
                self.add("events_missing", label(key), wanted.value, None, f"no {key[0]} for order {wanted.order}")
                continue
            self.check_owner(key, event, wanted.owner)
            if wanted.check == "exact" or (wanted.check == "unamended" and wanted.order not in self.updates):
                self.check_value(key, event, wanted.value, "value differs from the ERP")
        for order in self.expected.orders.values():
            self.announcements(order)
            self.refunds(order)
        for key in self.actual:
            if key not in self.handled:
                self.unexpected(key)
        return self.found

    def add(self, kind: str, key: str, expected: object, actual: object, detail: str) -> None:
        self.found.append(Finding(kind, key, expected, actual, detail))

    def event(self, key: EventKey, owner: str) -> dict[str, Any] | None:
        """The stored event of this key, preferring the copy on the owner's profile."""
        stored = self.actual.get(key, [])
        mine = [e for e in stored if owner in self.owners_of.get(str(e.get("profile_id")), set())]
        candidates = mine or stored
        return candidates[0] if candidates else None

    def check_owner(self, key: EventKey, event: dict[str, Any], owner: str) -> None:
        if owner and owner not in self.owners_of.get(str(event.get("profile_id")), set()):
            self.add("profiles_wrong", label(key), owner, event.get("profile_id"), "event on another profile")

    def check_value(self, key: EventKey, event: dict[str, Any], value: float, detail: str) -> None:
        if not close(event.get("value"), value):
            self.add("events_wrong_value", label(key), value, event.get("value"), detail)

    def announcements(self, order: PlacedOrder) -> None:
        """The latest Placed/Updated value is the ERP's current one; a Cancelled Order repeats it."""
        rules = self.rules
        updates = self.updates.get(order.number, [])
        for key in updates:
            self.handled.add(key)
            self.check_owner(key, self.actual[key][0], order.owner)
        # a storefront order's Placed Order is the storefront's: what the fleet announced are its updates
        placed = [] if order.storefront else [(rules.placed_order, order.order_id)]
        said = [(moment(e), k[0] == rules.updated_order, k, e) for k in [*updates, *placed]
                if (e := self.event(k, order.owner)) is not None]
        if not said:
            return
        _, _, latest_key, latest = max(said, key=lambda entry: entry[:2])
        if not order.cancelled:
            self.check_value(latest_key, latest, order.value, "the order's latest announced value is not the ERP's")
            return
        cancelled = self.event((rules.cancelled_order, order.order_id), order.owner)
        if cancelled is not None and isinstance(latest.get("value"), int | float):
            self.check_value((rules.cancelled_order, order.order_id), cancelled, latest["value"],
                             "Cancelled Order value is not the last announced value")

    def refunds(self, order: PlacedOrder) -> None:
        """Each memo refunded once: one under the order-level id, every other under <num>:refund:<memo>."""
        metric = self.rules.refunded_order
        order_key = (metric, order.order_id)
        composite = {m.number: (metric, f"{order.number}:refund:{m.number}") for m in order.memos}
        self.handled |= {order_key, *composite.values()}
        present = {number for number, key in composite.items() if key in self.actual}
        for memo in order.memos:
            if memo.number in present:
                key = composite[memo.number]
                event = self.event(key, order.owner)
                assert event is not None
                self.check_owner(key, event, order.owner)
                self.check_value(key, event, memo.value, "refund value differs from the memo")
        holder = self.order_id_holder(order, order_key, present)
        for index, memo in enumerate(order.memos):
            if memo.number not in present and memo.number != holder:
                key = order_key if index == 0 and order_key not in self.actual else composite[memo.number]
                self.add("events_missing", label(key), memo.value, None, f"memo {memo.number} is not refunded")

    def order_id_holder(self, order: PlacedOrder, order_key: EventKey, present: set[str]) -> str | None:
        """The memo the order-level refund stands for, by its value (Klaviyo's events carry no memo number)."""
        event = self.event(order_key, order.owner)
        if event is None:
            return None
        if order.memos:
            self.check_owner(order_key, event, order.owner)
        matching = [m.number for m in order.memos if close(m.value, event.get("value"))]
        unrefunded = [number for number in matching if number not in present]
        if unrefunded:
            return unrefunded[0]
        if matching:
            self.add("events_duplicated", f"creditmemo:{matching[0]}", 1, 2,
                     f"refunded under {order.order_id} and {order.number}:refund:{matching[0]}")
            return matching[0]
        if not order.memos:
            self.add("events_extra", label(order_key), None, event.get("value"), "a refund without a credit memo")
            return None
        first = order.memos[0]
        self.check_value(order_key, event, first.value, "refund value matches no unrefunded memo")
        return next((m.number for m in order.memos if m.number not in present), None)

    def unexpected(self, key: EventKey) -> None:
        """An event no rule expects: tolerated when history may have produced it, else extra."""
        event = self.actual[key][0]
        if key in self.expected.tolerated_events:
            self.check_owner(key, event, self.expected.tolerated_events[key])
            return
        unique_id = key[1]
        if unique_id in self.expected.tolerated_orders or unique_id.split(":")[0] in self.expected.tolerated_orders:
            return
        if unique_id.split(":")[0] in self.expected.waiting_orders:
            self.add("events_extra", label(key), None, event.get("value"),
                     "sent under the ERP number of a storefront order waiting for its reference")
            return
        self.add("events_extra", label(key), None, event.get("value"), "no rule produces this event")
