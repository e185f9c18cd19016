"""Reconciliation during live trading: changes in flight are not drift (flows/reconcile.py, "Settling").

Real Redis, real workers, both sandboxes. A customer created in Blue Cherry after the reconciler read the customer
pages (and delivered before it reads Klaviyo's profiles) is not an extra profile; an order placed after it read
the orders and delivered before it reads the profile is no aggregate mismatch; an order whose events the fleet
is still trying to send (Klaviyo refuses them for now: the work waits in the in-flight registry as a delayed
retry) is neither - it is counted "in flight, not compared". A difference planted behind the fleet's back (the
Klaviyo sandbox's tamper controls) is still reported, also on a customer that changed during the run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from connectors.bluecherry.client import BlueCherryClient
from delivery.runtime import build_runtime
from flows.reconcile import reconciler_for
from state.factory import Stores
from tests.integration.orders.conftest import BC_KEY, OrderFleet, running_fleet
from tests.integration.test_reconcile import BCSYNC, tamper
from tests.support.fleet import wait_for
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration
# where the fleet sends an order's events and a customer's aggregates
SENDS = ["POST /api/events", "POST /api/event-bulk-create-jobs", "POST /api/profile-import",
         "POST /api/profile-bulk-import-jobs"]


@pytest.fixture(scope="module")
def fleet(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrderFleet]:
    with running_fleet(redis_server, tmp_path_factory.mktemp("reconcile-in-flight"), "") as f:
        yield f


class TradingBetweenReads(BlueCherryClient):
    """Blue Cherry as the reconciler reads it, with trading in between: `after[path]` runs once, when the run
    has read the last page of that resource whole (no filter) and asks for the next."""

    def __init__(self, f: OrderFleet, after: dict[str, Callable[[], None]]) -> None:
        super().__init__(f.bc_url, BC_KEY, timeout=30, mapping=f.mapping)
        self.after = dict(after)

    def iter_pages(self, resource: Any, since_local: str | None, *args: Any, **kwargs: Any
                   ) -> Iterator[list[dict[str, Any]]]:
        yield from super().iter_pages(resource, since_local, *args, **kwargs)
        if since_local is None and not args and not kwargs.get("extra_filter") and resource.path in self.after:
            self.after.pop(resource.path)()


def profile_id(f: OrderFleet, code: str) -> str:
    return next(pid for pid, p in f.klaviyo_state()["profiles"].items() if p.get("external_id") == code)


def customers_with_an_order(f: OrderFleet, n: int) -> list[str]:
    codes = [f.new_customer() for _ in range(n)]
    f.poll_customers()
    for code in codes:
        f.new_order(customer=code, confirm=True, lines=[{"upc": f.upcs[0], "qty": 1}])
    f.poll()
    return codes


def test_customers_and_orders_created_while_the_run_reads_are_no_difference_but_planted_ones_are(
        fleet: OrderFleet) -> None:
    f = fleet
    ordering, planted = customers_with_an_order(f, 2)
    tamper(f, {"op": "set_profile", "profile_id": profile_id(f, planted), "attributes": {"first_name": "Planted"}})
    created: list[str] = []

    def order_placed() -> None:  # after the orders were read: placed, delivered, then a name changed in Klaviyo
        f.new_order(customer=ordering, confirm=True, lines=[{"upc": f.upcs[0], "qty": 2}])
        f.poll()
        tamper(f, {"op": "set_profile", "profile_id": profile_id(f, ordering), "attributes": {"last_name": "Moved"}})

    def customer_created() -> None:  # after the customer pages were read: created and delivered
        created.append(f.new_customer())
        f.poll_customers()

    rt = build_runtime(Stores(f.settings, f.mapping, f.redis))
    bc = TradingBetweenReads(f, {f.mapping.resources.order.path: order_placed,
                                 f.mapping.resources.customer.path: customer_created})
    try:
        summary = reconciler_for(f.settings, f.mapping, rt, bc, None).run(
            ["customers", "consent", "orders"], dry_run=True, restart=True)
    finally:
        bc.close()
    assert created and not bc.after, "both trades happened during the run"
    mine = {ordering, planted, *created}
    found = sorted((d.type, d.customer) for d in summary.differences if d.customer in mine)
    # the new customer is compared (its profile agrees), the new order is counted: only the planted names differ
    assert found == sorted([("recon_profile_field", planted), ("recon_profile_field", ordering)]), found
    assert not [d for d in summary.differences if d.type == "recon_profile_extra"]
    assert summary.rechecked >= 2 and summary.compared["customers"] >= 3


def test_an_order_still_being_delivered_is_in_flight_not_an_aggregate_mismatch(fleet: OrderFleet) -> None:
    f = fleet
    ordering, planted = customers_with_an_order(f, 2)
    tamper(f, {"op": "set_profile", "profile_id": profile_id(f, planted), "attributes": {"first_name": "Planted"}})
    faults = {"error_rates": {"503": 1.0}, "endpoints": SENDS}
    httpx.post(f"{f.klaviyo_url}/_sandbox/faults", json={"clear": True, **faults}, timeout=10).raise_for_status()
    try:
        f.new_order(customer=ordering, confirm=True, lines=[{"upc": f.upcs[0], "qty": 3}])
        f.emit(f.capture())
        aggregates = f"profile-aggregates:external_id:{ordering}"
        wait_for(lambda: bool(f.redis.hexists(f"{f.prefix}:inflight:ops", aggregates)), 30,
                 message="the order's aggregates held in flight (Klaviyo refuses them for now)")
        run = subprocess.run([BCSYNC, "reconcile", "all", "--json", "--dry-run"], env=f.env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        summary = json.loads(run.stdout)
    finally:
        httpx.post(f"{f.klaviyo_url}/_sandbox/faults", json={"clear": True}, timeout=10).raise_for_status()
    found = sorted((d["type"], d["customer"]) for d in summary["differences"] if d["customer"] in (ordering, planted))
    assert found == [("recon_profile_field", planted)], found
    moving = summary["in_flight_not_compared"]
    assert moving.get("recon_aggregate_mismatch") == 1 and moving.get("recon_event_missing", 0) >= 1, moving
    f.wait_idle(120)  # the refused work goes once Klaviyo takes it again
