"""Orders across the November fall-back in New York (issue 14, item 5): an order confirmed at 01:40 EDT and
cancelled an hour of wall clock "earlier", at 01:10 EST, is stored and sent in the order it happened - Placed,
then Cancelled. Read as the earlier instant, the cancellation (05:10Z) looked older than the confirmation
(05:40Z) and the order store refused it. Real poller reads, real workers at concurrency 2, both sandboxes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.orders.conftest import OrderFleet

pytestmark = pytest.mark.integration
PLACED, CANCELLED = "Placed Order", "Cancelled Order"


def clock(f: OrderFleet, **settings: Any) -> None:
    httpx.post(f"{f.bc_url}/_sandbox/clock", json=settings, timeout=10).raise_for_status()


def test_a_cancellation_at_0110_est_after_a_confirmation_at_0140_edt_is_sent(order_fleet: OrderFleet) -> None:
    f = order_fleet
    clock(f, timezone="America/New_York", now="2026-11-01 00:30:00", fold=0, freeze=True)
    customer = f.new_customer()
    f.poll_customers()
    order = f.new_order(customer=customer, lines=[{"upc": f.upcs[0], "qty": 1, "price": 30}])

    clock(f, now="2026-11-01 01:40:00", fold=0)  # EDT, 05:40Z
    f.apply({"op": "confirm", "ord_num": order})
    f.poll()
    ref = f"SHOP#{order}"  # this tenant's storefront reference (the fleet's mapping uses it as the order id)
    assert f.unique_ids(order).get(PLACED) == [ref]

    clock(f, now="2026-11-01 01:10:00", fold=1)  # the second 01:10: EST, 06:10Z
    f.apply({"op": "cancel", "ord_num": order})
    f.poll()
    assert f.unique_ids(order).get(CANCELLED) == [ref], f.unique_ids(order)
    (placed,), (cancelled,) = f.events(order)[PLACED], f.events(order)[CANCELLED]
    assert placed["time"] < cancelled["time"] or placed["time"] == cancelled["time"]
    assert f.dead_letters() == 0
