"""Live trading: a steady stream of business events at configurable rates, for the demo.

Each tick turns the per-minute rates into a number of events (carrying fractions over to the next tick) and
applies them as ordinary ``/_sandbox/apply`` operations, so live data obeys the same rules as scripted data.
"""

from __future__ import annotations

import random
from typing import Any

from sandbox.bluecherry.catalog import CONSENT_SOURCES, GUEST
from sandbox.bluecherry.config import LiveRates
from sandbox.bluecherry.ops import apply_ops
from sandbox.bluecherry.tenant import OpError, Tenant


class LiveTrader:
    def __init__(self, tenant: Tenant, rates: LiveRates, seed: int) -> None:
        self.tenant = tenant
        self.rates = rates
        self.rng = random.Random(seed + 1)
        self.carry: dict[str, float] = {}
        self.running = False
        self.applied = 0
        self.failed = 0

    def due(self, name: str, per_minute: float, seconds: float) -> int:
        total = self.carry.get(name, 0.0) + per_minute * seconds / 60.0
        count = int(total)
        self.carry[name] = total - count
        return count

    def tick(self, seconds: float) -> int:
        """Apply the events due for ``seconds`` of trading; returns how many were applied."""
        store = self.tenant.store
        with store.lock:
            orders = [row.body for row in store.recent("order", 300)]
            invoices = [row.body for row in store.recent("invoice", 100)]
            customers = [row.body["customer"] for row in store.recent("customer", 200) if row.body["customer"] != GUEST]
            upcs = [row.body["upc"] for row in store.recent("inventory", 200)]
        # one random stream: the ops are drawn in this order
        ops = self.customer_ops(customers, seconds)
        ops += self.order_ops(orders, invoices, customers, upcs, seconds)
        ops += self.stock_ops(upcs, seconds)
        done = 0
        for item in ops:  # one op per transaction: a refused op (e.g. a race with a cancel) skips only itself
            try:
                apply_ops(self.tenant, [item])
                done += 1
            except OpError:
                self.failed += 1
        self.applied += done
        return done

    def customer_ops(self, customers: list[str], seconds: float) -> list[dict[str, Any]]:
        """New customers, consent changes and customer edits due."""
        r = self.rates
        ops: list[dict[str, Any]] = []
        for _ in range(self.due("customers", r.customers, seconds)):
            ops.append({"op": "create_customer", "email_optin": self.rng.random() < 0.6})
        for _ in range(self.due("consent", r.consent_changes, seconds)):
            if customers:
                ops.append(
                    {
                        "op": "consent",
                        "customer": self.rng.choice(customers),
                        "channel": self.rng.choice(("email", "sms")),
                        "optin": self.rng.random() < 0.5,
                        "source": self.rng.choice(CONSENT_SOURCES),
                    }
                )
        for _ in range(self.due("customer_edits", r.customer_edits, seconds)):
            if customers:
                ops.append(
                    {
                        "op": "edit_customer",
                        "customer": self.rng.choice(customers),
                        "fields": {"phone": f"(212) {self.rng.randint(200, 999)}-{self.rng.randint(1000, 9999)}"},
                    }
                )
        return ops

    def order_ops(
        self, orders: list[dict[str, Any]], invoices: list[dict[str, Any]], customers: list[str], upcs: list[str],
        seconds: float,
    ) -> list[dict[str, Any]]:
        """New orders, confirmations, shipments, cancellations and returns due."""
        r = self.rates
        entered = [o["ord_num"] for o in orders if o["ord_status"] == "E"]
        shippable = [o["ord_num"] for o in orders if o["ord_status"] in ("O", "P")]
        ops: list[dict[str, Any]] = []
        for _ in range(self.due("orders", r.orders, seconds)):
            if upcs:
                lines = [
                    {"upc": self.rng.choice(upcs), "qty": self.rng.choice((1, 1, 2))}
                    for _ in range(self.rng.choice((1, 1, 2, 3)))
                ]
                customer = GUEST if self.rng.random() < 0.3 or not customers else self.rng.choice(customers)
                ops.append({"op": "place_order", "customer": customer, "lines": lines})
        for name, rate, pool, op in (
            ("confirms", r.confirms, entered, "confirm"),
            ("ships", r.ships, shippable, "ship"),
            ("cancels", r.cancels, entered + shippable, "cancel"),
        ):
            for _ in range(self.due(name, rate, seconds)):
                if pool:
                    ops.append({"op": op, "ord_num": pool.pop(self.rng.randrange(len(pool)))})
        for _ in range(self.due("returns", r.returns, seconds)):
            if invoices:
                ops.append(
                    {
                        "op": "return",
                        "inv_num": self.rng.choice(invoices)["inv_num"],
                        "restock": self.rng.random() < 0.8,
                    }
                )
        return ops

    def stock_ops(self, upcs: list[str], seconds: float) -> list[dict[str, Any]]:
        """Stock adjustments and bursts (many customers changed at once) due."""
        r = self.rates
        ops: list[dict[str, Any]] = []
        for _ in range(self.due("stock", r.stock_adjustments, seconds)):
            if upcs:
                ops.append(
                    {
                        "op": "adjust_stock",
                        "upc": self.rng.choice(upcs),
                        "location": "WH1",
                        "delta": self.rng.choice((-2, -1, 5, 12, 24)),
                    }
                )
        for _ in range(self.due("bursts", r.bursts, seconds)):
            ops.append({"op": "burst", "resource": "customer", "count": r.burst_size})
        return ops
