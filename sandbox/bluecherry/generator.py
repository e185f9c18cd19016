"""Seeded generator of a whole tenant: locations, styles and SKUs, customers, historic orders with their pick
tickets, invoices and credit memos, and inventory consistent with the open documents.

Streams into the store in batches (bounded memory: customers are a pure function of their number, documents
are flushed every ``batch`` orders; only per-SKU tallies stay in memory). Orders are generated in time order,
so the (resource, last_mod, pkey) index grows at its end.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sandbox.bluecherry.catalog import (
    CARRIERS,
    CONSENT_SOURCES,
    GUEST,
    RETURN_REASONS,
    SELLABLE,
    STOREFRONT_CHANNEL,
    WAREHOUSES,
    WHOLESALE_ACCOUNTS,
    build_styles,
    customer_code,
    person,
)
from sandbox.bluecherry.clock import SandboxClock
from sandbox.bluecherry.records import (
    address,
    customer_body,
    inventory_body,
    inventory_key,
    invoice_body,
    location_body,
    memo_body,
    order_body,
    order_line,
    pick_body,
    style_body,
)
from sandbox.bluecherry.store import RecordStore
from sandbox.bluecherry.tenant import NUMBER_START, picked, reservations

DAY = 86400.0
EPOCH = date(1970, 1, 1)


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class _Batches:
    """Per-resource insert buffers flushed together."""

    def __init__(self, store: RecordStore, size: int) -> None:
        self.store = store
        self.size = size
        self.rows: dict[str, list[tuple[str, str, str]]] = {}
        self.pending = 0

    def add(self, resource: str, nkey: str, last_mod: str, body: dict[str, Any]) -> None:
        self.rows.setdefault(resource, []).append((nkey, last_mod, dumps(body)))
        self.pending += 1
        if self.pending >= self.size:
            self.flush()

    def flush(self) -> None:
        with self.store.lock:
            self.store.begin()
            for resource, rows in self.rows.items():
                self.store.insert_many(resource, rows)
            self.store.commit()
        self.rows = {}
        self.pending = 0


def fast_stamper(clock: SandboxClock) -> Callable[[float], str]:
    """``clock.local_stamp`` without a datetime per call (date formatting was a large share of the generator's
    time): the zone offset is looked up once per 15-minute UTC block (every zone changes offset on such a
    boundary) and the date part once per day."""
    zone = clock.zone

    @lru_cache(maxsize=65536)
    def offset(block: int) -> int:
        delta = datetime.fromtimestamp(block * 900, zone).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    @lru_cache(maxsize=8192)
    def day(days: int) -> str:
        return (EPOCH + timedelta(days=days)).isoformat()

    def stamp(ts: float) -> str:
        whole = int(ts)
        days, rest = divmod(whole + offset(whole // 900), 86400)
        hours, rest = divmod(rest, 3600)
        return f"{day(days)} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}"

    return stamp


def generate_tenant(
    store: RecordStore,
    clock: SandboxClock,
    *,
    seed: int,
    customers: int,
    styles: int,
    orders: int,
    history_days: int = 365,
    batch: int = 20000,
    progress: Callable[[int], None] | None = None,
    storefront_every: int = 0,
) -> dict[str, int]:
    """`storefront_every` N > 0: every Nth order, when a web order, comes in through the storefront channel
    (`STOREFRONT_CHANNEL`), and every second one of those lacks its storefront reference (`web_ref` empty).
    Decided by the order's place in the history, so the random stream, hence the rest of the tenant, is the
    same with or without it."""
    # One random stream for the whole tenant: the order of its draws is the data, so the parts below run in
    # this order and each draws in the same order as ever.
    rng = random.Random(seed)
    now = clock.timestamp()
    stamp = fast_stamper(clock)
    out = _Batches(store, batch)

    for loc in WAREHOUSES:
        out.add("Location", loc[0], stamp(now - history_days * DAY), location_body(*loc))

    catalog = build_styles(max(1, styles), seed)
    skus = _add_styles(out, rng, stamp, catalog, now, history_days)
    store.insert_skus((s["upc"], s["style"], dumps(s)) for s in skus)

    start = now - history_days * DAY
    wholesale = _add_customers(out, rng, stamp, seed, customers, start, now)
    store.set_counter("customer", customers)

    history = _History(rng, stamp, out, now, seed, customers, wholesale,
                       active=[s for s in skus if s["status"] == "A"] or skus, storefront_every=storefront_every)
    span = now - start
    for n in range(orders):
        history.add_order(n, start + (n + rng.random()) * span / max(1, orders))
        if progress is not None and n % 100000 == 0 and n:
            progress(n)
    numbers = history.numbers
    for kind, value in numbers.items():
        store.set_counter(kind, value)
    store.set_counter("order", NUMBER_START["order"] + orders)

    _add_inventory(out, rng, stamp, skus, history, now)
    out.flush()
    return {
        "customers": customers + 1 + len(wholesale),
        "styles": len(catalog),
        "skus": len(skus),
        "orders": orders,
        "picks": numbers["pick"] - NUMBER_START["pick"],
        "invoices": numbers["invoice"] - NUMBER_START["invoice"],
        "creditmemos": numbers["memo"] - NUMBER_START["memo"],
    }


def _add_styles(
    out: _Batches,
    rng: random.Random,
    stamp: Callable[[float], str],
    catalog: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    now: float,
    history_days: int,
) -> list[dict[str, Any]]:
    """The style masters (about 5% discontinued, with their SKUs); returns every SKU."""
    skus: list[dict[str, Any]] = []
    for header, style_skus in catalog:
        if rng.random() < 0.05:
            header["status"] = "D"
            for sku in style_skus:
                sku["status"] = "D"
        out.add(
            "style",
            header["style"],
            stamp(now - rng.uniform(0, history_days) * DAY),
            style_body(header, style_skus),
        )
        skus.extend(style_skus)
    return skus


def _add_customers(
    out: _Batches,
    rng: random.Random,
    stamp: Callable[[float], str],
    seed: int,
    customers: int,
    start: float,
    now: float,
) -> list[str]:
    """The web guest, the wholesale accounts and `customers` consumers (some opted in to email or SMS since
    they were created); returns the wholesale accounts' codes."""
    guest_p = person(seed, 0)
    out.add(
        "customer",
        GUEST,
        stamp(start),
        {
            **customer_body(
                GUEST,
                {**guest_p, "first_name": "Web", "last_name": "Guest", "email": "", "phone": ""},
                stamp(start),
            ),
            "name": "WEB GUEST ORDERS",
        },
    )
    wholesale = [f"W{n + 1:05d}" for n in range(len(WHOLESALE_ACCOUNTS))]
    for code, name in zip(wholesale, WHOLESALE_ACCOUNTS, strict=True):
        p = person(seed, 9_000_000 + int(code[1:]))
        out.add("customer", code, stamp(start), customer_body(code, p, stamp(start), wholesale_name=name))
    for i in range(1, customers + 1):
        created = start + (i / max(1, customers)) * (now - start) * 0.9
        fields: dict[str, str] = {}
        modified = created
        for channel, share in (("email", 0.6), ("sms", 0.25)):
            if rng.random() < share:
                when = created + rng.uniform(0, now - created)
                modified = max(modified, when)
                fields |= {
                    f"{channel}_optin": "Y",
                    f"{channel}_date": stamp(when),
                    f"{channel}_source": rng.choice(CONSENT_SOURCES),
                }
        out.add(
            "customer",
            customer_code(i),
            stamp(modified),
            customer_body(customer_code(i), person(seed, i), stamp(created), **fields),
        )
    return wholesale


# What becomes of an order, by a roll of the dice under each threshold in turn (else shipped): orders older
# than ten days are settled, recent ones may be anywhere from entered to shipped.
SETTLED_FATES = ((0.07, "cancel"), (0.12, "return"))
RECENT_FATES = ((0.2, "enter"), (0.5, "confirm"), (0.6, "pick"), (0.7, "partial"), (0.75, "hold"), (0.8, "cancel"))


def _fate(age_days: float, roll: float) -> str:
    for limit, fate in SETTLED_FATES if age_days > 10 else RECENT_FATES:
        if roll < limit:
            return fate
    return "ship"


@dataclass
class _History:
    """Writes the order history: each order with the documents its fate leaves (pick ticket, invoice, credit
    memo), numbering the documents and tallying per (UPC, location) what is picked and what is still open."""

    rng: random.Random
    stamp: Callable[[float], str]
    out: _Batches
    now: float
    seed: int
    customers: int
    wholesale: list[str]
    active: list[dict[str, Any]]
    storefront_every: int = 0  # see `generate_tenant`
    numbers: dict[str, int] = field(
        default_factory=lambda: {kind: NUMBER_START[kind] for kind in ("pick", "invoice", "memo")}
    )
    open_tally: Counter[tuple[str, str]] = field(default_factory=Counter)
    pick_tally: Counter[tuple[str, str]] = field(default_factory=Counter)

    def next_num(self, kind: str) -> str:
        self.numbers[kind] += 1
        return str(self.numbers[kind])

    def add_order(self, n: int, ts: float) -> None:
        rng = self.rng
        ord_num = str(NUMBER_START["order"] + n + 1)
        roll = rng.random()
        ord_type, channel, location = (
            ("WEB", "WEB", "WH1") if roll < 0.6 else (("RTL", "POS", "WH1") if roll < 0.75 else ("WHL", "EDI", "WH2"))
        )
        code, addresses = self.buyer(n, ord_type)
        lines, first_season = self.order_lines(ord_type)
        web_ref = f"SHOP#{n + 1}" if ord_type == "WEB" else ""
        every = self.storefront_every
        if every > 0 and ord_type == "WEB" and n % every == 0:
            channel = STOREFRONT_CHANNEL
            web_ref = "" if n // every % 2 == 0 else web_ref
        order = order_body(
            ord_num,
            code,
            ord_type,
            channel,
            location,
            self.stamp(ts),
            addresses,
            lines,
            web_ref=web_ref,
            season=first_season,
            po_num=f"PO{n + 1}" if ord_type == "WHL" else "",
            discount_pct=0.1 if rng.random() < 0.15 else 0.0,
        )
        last = self.fulfil(order, lines, ts)
        self.open_tally.update(reservations(order))
        self.out.add("order", ord_num, self.stamp(last), order)

    def buyer(self, n: int, ord_type: str) -> tuple[str, list[dict[str, Any]]]:
        """Who orders (a wholesale account, a web guest or one of the customers), and the addresses."""
        rng, seed = self.rng, self.seed
        if ord_type == "WHL":
            code = rng.choice(self.wholesale)
            p = person(seed, 9_000_000 + int(code[1:]))
            return code, [address("BT", code, p), address("ST", code, p)]
        if self.customers == 0 or ord_type == "WEB" and rng.random() < 0.3:
            p = person(seed, 10_000_000 + n)
            name = f"{p['first_name']} {p['last_name']}"
            return GUEST, [
                address("BT", name, p, p["email"], p["phone"]),
                address("ST", name, p, "", p["phone"]),
            ]
        i = rng.randint(1, self.customers)
        p = person(seed, i)
        name = f"{p['first_name']} {p['last_name']}"
        return customer_code(i), [
            address("BT", name, p, p["email"], p["phone"]),
            address("ST", name, p, p["email"], ""),
        ]

    def order_lines(self, ord_type: str) -> tuple[list[dict[str, Any]], str]:
        """One to four lines of active SKUs (wholesale: by the case at half price), and the first one's season."""
        rng, active = self.rng, self.active
        lines = []
        first_season = ""
        for seq in range(1, rng.choice((1, 1, 2, 2, 3, 4)) + 1):
            sku = active[rng.randrange(len(active))]
            qty = rng.choice((6, 12, 24, 36)) if ord_type == "WHL" else rng.choice((1, 1, 1, 2, 3))
            price = round(sku["retail_price"] * (0.5 if ord_type == "WHL" else 1.0), 2)
            lines.append(order_line(seq, sku, qty, price))
            first_season = first_season or sku["season"]
        return lines, first_season

    def fulfil(self, order: dict[str, Any], lines: list[dict[str, Any]], ts: float) -> float:
        """Applies the order's fate to it (with its documents); returns the time of its last change."""
        rng = self.rng
        fate = _fate((self.now - ts) / DAY, rng.random())
        last = ts
        latest = max(ts, self.now - 1)  # nothing is stamped after the clock: a poller would skip past "now"
        if fate != "enter":
            last = min(latest, ts + rng.uniform(60, 3600))
            order["ord_status"] = "O"
            order["confirm_date"] = self.stamp(last)
        if fate == "hold":
            order["ord_status"] = "H"
            order["hold_reason"] = "CREDIT"
        elif fate == "cancel":
            last = min(latest, last + rng.uniform(60, DAY))
            order["ord_status"] = "X"
            for line in lines:
                line["cancel_qty"] = line["ord_qty"]
        elif fate in ("pick", "partial", "ship", "return"):
            last = self.pick(order, lines, fate, last)
        return last

    def pick(self, order: dict[str, Any], lines: list[dict[str, Any]], fate: str, last: float) -> float:
        """The pick ticket (every line, or the first for a partial shipment); unless only picked, shipped with
        its invoice, and for a return a credit memo too. Returns the time of the pick ticket."""
        rng, now, stamp = self.rng, self.now, self.stamp
        chosen = [(line, line["ord_qty"]) for line in (lines[:1] if fate == "partial" else lines)]
        for line, qty in chosen:
            line["pick_qty"] = qty
        last += rng.uniform(DAY / 4, min(3 * DAY, max(DAY / 4, now - last - 60)))
        last = min(last, now - 1)
        pick = pick_body(order, self.next_num("pick"), chosen, stamp(last))
        if fate != "pick":
            pick.update(
                pick_status="S",
                ship_date=stamp(last),
                end_date=stamp(last),
                shipper=rng.choice(CARRIERS),
                tracking_num=f"1Z{rng.randrange(10**15):016d}",
            )
            inv = invoice_body(pick, order, self.next_num("invoice"), stamp(last), True)
            pick["inv_num"] = inv["inv_num"]
            for line, qty in chosen:
                line["ship_qty"] = line["inv_qty"] = qty
            order["ord_status"] = "P" if fate == "partial" else "C"
            self.out.add("invoice", inv["inv_num"], stamp(last), inv)
            if fate == "return":
                self.credit(inv, last)
        self.pick_tally.update(picked(pick))
        self.out.add("pick", pick["pick_num"], stamp(last), pick)
        return last

    def credit(self, inv: dict[str, Any], last: float) -> None:
        """A return of the invoice's first line, 3 to 30 days after shipping, mostly restocked."""
        rng = self.rng
        when = min(self.now - 1, last + rng.uniform(3 * DAY, 30 * DAY))
        row = inv["invoicedetail"]["rows"][0]
        restock = rng.random() < 0.8
        memo = memo_body(
            self.next_num("memo"),
            inv,
            self.stamp(when),
            "R",
            rng.choice(RETURN_REASONS),
            restock,
            [(row, row["inv_qty"])],
        )
        self.out.add("creditmemo", memo["memo_num"], self.stamp(when), memo)


def _add_inventory(
    out: _Batches,
    rng: random.Random,
    stamp: Callable[[float], str],
    skus: list[dict[str, Any]],
    history: _History,
    now: float,
) -> None:
    """Stock of every SKU in the sellable warehouses and some in QC: at least what is picked, but about 3%
    negative, with the open quantities of the history."""
    for sku in skus:
        for location in (*SELLABLE, "QC"):
            if location == "QC" and rng.random() < 0.8:
                continue
            on_hand = rng.choice((0, 0, 2, 5, 12, 25, 40, 80, 150)) + rng.randint(0, 9)
            key = (sku["upc"], location)
            picked_qty = history.pick_tally[key]
            on_hand = max(on_hand, picked_qty) if rng.random() < 0.97 else -rng.randint(1, 3)
            body = inventory_body(sku, location, on_hand, picked_qty, history.open_tally[key])
            out.add("inventory", inventory_key(sku["upc"], location), stamp(now - rng.uniform(0, 30 * DAY)), body)
