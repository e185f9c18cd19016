"""Live trading, reset and stats."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.unit.sandbox.bluecherry.conftest import BlueCherry


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_live_trading_produces_business_events_at_the_set_rates(
    start_sandbox: Callable[..., BlueCherry],
) -> None:
    bc = start_sandbox(live_tick_seconds=0.1, frozen=False)
    orders_before = bc.sandbox.store.count("order")
    customers_before = bc.sandbox.store.count("customer")
    state = bc.control.post(
        "/live",
        json={"running": True, "rates": {"orders": 600, "customers": 600, "confirms": 600, "ships": 300}},
    ).json()
    assert state["running"] and state["rates"]["orders"] == 600
    assert wait_for(
        lambda: (
            bc.sandbox.store.count("order") >= orders_before + 5
            and bc.sandbox.store.count("customer") >= customers_before + 5
        )
    )
    assert wait_for(lambda: bc.control.get("/live").json()["applied"] >= 20)
    stopped = bc.control.post("/live", json={"running": False}).json()
    count = bc.sandbox.store.count("order")
    time.sleep(0.3)  # three ticks: a stopped trader adds nothing
    assert not stopped["running"] and bc.sandbox.store.count("order") == count
    assert bc.control.post("/live", json={"rates": {"orders": -1}}).status_code == 400


def test_reset_regenerates_and_stats_count_requests(bc: BlueCherry) -> None:
    bc.get("customer")
    bc.get("customer")
    bc.get("order")
    bc.api.get("/order", params={"_pgsize": 999})
    stats = bc.control.get("/stats").json()
    assert stats["requests"] == {"customer": 2, "order": 2}
    assert stats["statuses"] == {"200": 3, "400": 1}
    assert stats["counts"]["order"] == 80
    bc.apply({"op": "create_customer"})
    generated = bc.control.post("/reset", json={"orders": 10, "customers": 5}).json()["generated"]
    assert generated["orders"] == 10
    stats = bc.control.get("/stats").json()
    assert stats["requests"] == {} and stats["counts"]["order"] == 10 and stats["counts"]["customer"] == 14
    assert bc.control.post("/reset", json={"orders": "many"}).status_code == 400
