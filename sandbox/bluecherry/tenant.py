"""The live tenant: record writes that stamp ``last_mod``, and stock that moves with orders.

Stock rules (one record per SKU per warehouse):
- ``qty_open``: reserved by confirmed orders (O, P, or H with a confirm_date), not yet on a pick ticket;
- ``qty_pick``: on open pick tickets (pick_status O);
- ``qty_oh``: physically in the warehouse (shipping removes, a restocked return or an adjustment adds);
- ``qty_avail`` = qty_oh - qty_pick.
Reservations and picks are derived from the documents and applied as differences, so no path can count a
unit twice or forget to release one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sandbox.bluecherry.clock import SandboxClock
from sandbox.bluecherry.records import inventory_body, inventory_key
from sandbox.bluecherry.store import RecordStore, Row

RESERVING = ("O", "P", "H")
NUMBER_START = {"customer": 0, "order": 100000, "pick": 500000, "invoice": 700000, "memo": 900000}


class OpError(ValueError):
    """A mutation that cannot be applied; the message says what and which record."""


def reservations(order: dict[str, Any]) -> Counter[tuple[str, str]]:
    held: Counter[tuple[str, str]] = Counter()
    if order.get("ord_status") not in RESERVING or not order.get("confirm_date"):
        return held
    for line in order["orderdetail"]["rows"]:
        qty = line["ord_qty"] - line["cancel_qty"] - line["pick_qty"]
        if qty > 0:
            held[(line["upc"], order["location"])] += qty
    return held


def picked(pick: dict[str, Any]) -> Counter[tuple[str, str]]:
    held: Counter[tuple[str, str]] = Counter()
    if pick.get("pick_status") == "O":
        for row in pick["pickdetail"]["rows"]:
            held[(row["upc"], pick["location"])] += row["total_qty"]
    return held


class Tenant:
    def __init__(self, store: RecordStore, clock: SandboxClock, seed: int) -> None:
        self.store = store
        self.clock = clock
        self.seed = seed
        self.touched: dict[tuple[str, int], dict[str, Any]] = {}
        self.stamp: str | None = None  # when set, every write of this batch uses it (same-second bursts)

    def now(self) -> str:
        return self.stamp or self.clock.now_local()

    # --- reads ----------------------------------------------------------------------------------
    def load(self, resource: str, nkey: str, what: str) -> dict[str, Any]:
        row = self.store.get(resource, str(nkey))
        if row is None:
            raise OpError(f"{what} '{nkey}' not found")
        return row.body

    def sku(self, upc: str) -> dict[str, Any]:
        found = self.store.get_sku(str(upc))
        if found is None:
            raise OpError(f"SKU with upc '{upc}' not found")
        return found

    # --- writes ---------------------------------------------------------------------------------
    def save(self, resource: str, nkey: str, body: dict[str, Any]) -> dict[str, Any]:
        stamp = self.now()
        pkey = self.store.put(resource, nkey, body, stamp)
        record = {"pkey": pkey, **body, "last_mod": stamp}
        self.touched[(resource, pkey)] = record
        return record

    def touch_rows(self, resource: str, rows: list[Row]) -> None:
        stamp = self.now()
        self.store.touch(resource, [r.pkey for r in rows], stamp)
        for r in rows:
            self.touched[(resource, r.pkey)] = {"pkey": r.pkey, **r.body, "last_mod": stamp}

    def take_touched(self) -> list[dict[str, Any]]:
        out = [{"resource": res, "pkey": pkey, "record": rec} for (res, pkey), rec in self.touched.items()]
        self.touched = {}
        return out

    def next_number(self, kind: str) -> int:
        return self.store.next_number(kind, NUMBER_START[kind] + 1)

    # --- stock ----------------------------------------------------------------------------------
    def move_stock(self, upc: str, location: str, *, on_hand: int = 0, pick: int = 0, open_qty: int = 0) -> None:
        if not (on_hand or pick or open_qty):
            return
        key = inventory_key(upc, location)
        row = self.store.get("inventory", key)
        body = row.body if row else inventory_body(self.sku(upc), location, 0, 0, 0)
        body["qty_oh"] += on_hand
        body["qty_pick"] += pick
        body["qty_open"] += open_qty
        body["qty_avail"] = body["qty_oh"] - body["qty_pick"]
        self.save("inventory", key, body)

    def save_order(self, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
        """Write an order and move the open (reserved) bucket by the change in what it reserves."""
        delta = reservations(after)
        delta.subtract(reservations(before) if before else Counter())
        for (upc, loc), qty in delta.items():
            self.move_stock(upc, loc, open_qty=qty)
        return self.save("order", after["ord_num"], after)

    def save_pick(self, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
        delta = picked(after)
        delta.subtract(picked(before) if before else Counter())
        for (upc, loc), qty in delta.items():
            self.move_stock(upc, loc, pick=qty)
        return self.save("pick", after["pick_num"], after)
