"""An order confirmed and cancelled within one poll interval is read only as cancelled, but its confirmation date
says it was placed: Klaviyo gets Placed Order and Cancelled Order, in lifecycle order (issue 14). An order
cancelled before it was ever confirmed gets nothing. Real poller reads, real workers at concurrency 2, on every
tenant dialect (the ibmi tenant has no entry date: its Placed Order is dated by the confirmation alone)."""

from __future__ import annotations

import pytest

from tests.integration.orders.conftest import OrderFleet
from tests.support.fleet import both_dialects

pytestmark = [pytest.mark.integration, both_dialects]
PLACED, CANCELLED = "Placed Order", "Cancelled Order"


def test_confirmed_and_cancelled_between_two_polls_gets_placed_then_cancelled(order_fleet: OrderFleet) -> None:
    f = order_fleet
    customer = f.new_customer()
    f.poll_customers()
    placed = f.new_order(customer=customer, lines=[{"upc": f.upcs[0], "qty": 2, "price": 15}])
    never = f.new_order(customer=customer, lines=[{"upc": f.upcs[0], "qty": 1, "price": 15}])
    f.poll()
    assert f.events(placed) == {} and f.events(never) == {}

    f.apply({"op": "confirm", "ord_num": placed})  # a minute later (ERP time) ...
    f.apply({"op": "cancel", "ord_num": placed}, {"op": "cancel", "ord_num": never})  # ... both cancelled
    f.poll()  # the first read of either since: status X

    ref = f"SHOP#{placed}"
    assert f.unique_ids(placed).get(PLACED) == [ref] and f.unique_ids(placed).get(CANCELLED) == [ref]
    (placed_event,), (cancelled_event,) = f.events(placed)[PLACED], f.events(placed)[CANCELLED]
    assert placed_event["time"] < cancelled_event["time"], "Placed at the confirmation, Cancelled after it"
    assert cancelled_event["value"] == placed_event["value"] > 30.0  # the goods, with tax and freight
    assert f.events(never) == {}, "never confirmed: never placed, nothing to cancel"
    assert f.dead_letters() == 0
