"""`bcsync reconcile` end to end (issue 20): real Redis, real workers at concurrency 2 per lane, both sandboxes.

The fleet first delivers customers (with consent), orders and the catalog with stock; reconciliation then finds
nothing. One difference of each type is planted behind the fleet's back (the Klaviyo sandbox's tamper controls,
an event posted by another integration); `bcsync reconcile all` reports exactly those with their type and owner;
`--repair` fixes the fleet-owned ones (marked `repair` in the ledger) and leaves the others; a second run reports
nothing new."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from state.reconcile_summary import read_last
from sync.fields import child_rows
from tests.integration.orders.conftest import OrderFleet, running_fleet
from tests.support.fleet import wait_for
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration
BCSYNC = str(Path(sys.executable).with_name("bcsync"))
CATALOG = ("style", "location", "inventory")

FLEET_OWNED = {"recon_profile_missing": "operations", "recon_profile_field": "operations",
               "recon_consent_mismatch": "operations", "recon_event_missing": "operations",
               "recon_aggregate_mismatch": "operations", "recon_stock_mismatch": "operations",
               "recon_catalog_missing": "ecommerce"}
FOR_PEOPLE = {"recon_profile_extra": "operations", "recon_profile_split": "operations",
              "recon_profile_merged": "operations", "recon_consent_klaviyo_side": "ecommerce",
              "recon_event_extra": "operations", "recon_event_value": "operations", "revenue_mismatch": "finance"}


@pytest.fixture(scope="module")
def fleet(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrderFleet]:
    with running_fleet(redis_server, tmp_path_factory.mktemp("reconcile"), "") as f:
        yield f


def reconcile(f: OrderFleet, *args: str, area: str = "all") -> dict[str, Any]:
    run = subprocess.run([BCSYNC, "reconcile", area, "--json", *args], env=f.env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def found(summary: dict[str, Any]) -> dict[str, str]:
    """type -> owner of what a run reported (one each: the test plants one of each)."""
    types = [d["type"] for d in summary["differences"]]
    assert len(types) == len(set(types)), summary["differences"]
    return {d["type"]: d["owner"] for d in summary["differences"]}


def tamper(f: OrderFleet, *ops: dict[str, Any]) -> list[dict[str, Any]]:
    r = httpx.post(f"{f.klaviyo_url}/_sandbox/tamper", json=list(ops), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


def event_of(f: OrderFleet, order: str, metric: str) -> dict[str, Any]:
    return f.events(order)[metric][0]


def deliver(f: OrderFleet) -> dict[str, str]:
    """Customers (two opted in to e-mail), their orders, the catalog and stock, all delivered."""
    codes = {}
    for name, extra in (("missing", {}), ("extra", {}), ("split", {}), ("merged", {}), ("host", {}),
                        ("field", {}), ("consent", {"email_optin": "Y"}), ("twoway", {"email_optin": "Y"}),
                        ("orders", {}), ("aggregates", {})):
        touched = f.apply({"op": "create_customer", **extra})
        codes[name] = next(t["record"]["customer"] for t in touched if t["resource"] == "customer")
    f.poll_customers()
    upc = f.upcs[0]
    orders = {}
    for name, customer, lines in (("merged", "merged", 1), ("host", "host", 1), ("missing_event", "orders", 1),
                                  ("value", "orders", 2), ("revenue", "aggregates", 1)):
        orders[name] = f.new_order(customer=codes[customer], confirm=True,
                                   lines=[{"upc": upc, "qty": 1 + i} for i in range(lines)])
    f.poll()
    f.emit(f.capture(CATALOG))
    f.wait_idle()
    styles = next(iter(f.bc.iter_pages(f.mapping.resources.style, None)))
    wanted = sum(len(child_rows(s[f.mapping.fields.style.skus])) for s in styles)

    def catalog_sent() -> bool:  # beat's flush_stock tick, played here: the catalog outbox and stock figures
        f.app.send_task("bcsync.flush_stock", args=[], queue="batch")
        f.wait_idle()
        return len(f.klaviyo_state()["catalog"]["variants"]) >= wanted

    wait_for(catalog_sent, timeout=60, interval=0.5)
    return {**codes, **{f"order:{k}": v for k, v in orders.items()}}


def test_reconcile_reports_each_planted_difference_repairs_the_fleets_and_finds_nothing_new_after(
        fleet: OrderFleet) -> None:
    f = fleet
    ids = deliver(f)
    assert found(reconcile(f)) == {}, "a freshly delivered fleet must reconcile clean"

    state = f.klaviyo_state()
    profile = {p["external_id"]: pid for pid, p in state["profiles"].items() if p.get("external_id")}
    variants = sorted(state["catalog"]["variants"])
    split = state["profiles"][profile[ids["split"]]]
    tamper(
        f,
        {"op": "delete_profile", "profile_id": profile[ids["missing"]]},
        {"op": "add_profile", "attributes": {"external_id": "GHOST1", "email": "ghost@example.com"}},
        {"op": "set_profile", "profile_id": profile[ids["split"]], "attributes": {"email": "moved@example.com"}},
        {"op": "add_profile", "attributes": {"email": split["email"]}},
        {"op": "merge_profiles", "source_id": profile[ids["merged"]], "destination_id": profile[ids["host"]]},
        {"op": "set_profile", "profile_id": profile[ids["field"]], "attributes": {"first_name": "Changed"}},
        {"op": "set_consent", "profile_id": profile[ids["consent"]], "channel": "email",
         "consent": "NEVER_SUBSCRIBED"},
        {"op": "set_consent", "profile_id": profile[ids["twoway"]], "channel": "email", "consent": "UNSUBSCRIBED"},
        {"op": "delete_event", "event_id": event_of(f, ids["order:missing_event"], "Placed Order")["id"]},
        {"op": "set_event", "event_id": event_of(f, ids["order:value"], "Ordered Product")["id"], "value": 1.5},
        {"op": "set_event", "event_id": event_of(f, ids["order:revenue"], "Placed Order")["id"], "value": 1.0},
        {"op": "set_profile", "profile_id": profile[ids["aggregates"]],
         "attributes": {"properties": {"erp_order_count": 7}}},
        {"op": "set_variant_inventory", "variant_id": variants[0], "quantity": 4321},
        {"op": "delete_catalog", "kind": "catalog-variant", "id": variants[1]},
    )
    # another integration sends an event under the fleet's key for an order that was never cancelled
    placed = event_of(f, ids["order:value"], "Placed Order")
    body = {"data": {"type": "event", "attributes": {
        "properties": {**placed["properties"], "bcsync_key": f"event:Cancelled Order:{ids['order:value']}"},
        "metric": {"data": {"type": "metric", "attributes": {"name": "Cancelled Order"}}},
        "profile": {"data": {"type": "profile", "id": placed["profile_id"], "attributes": {}}}, "value": 10}}}
    r = httpx.post(f"{f.klaviyo_url}/api/events", json=body, timeout=30, headers={
        "Authorization": "Klaviyo-API-Key pk_test_0123456789abcdef", "revision": "2026-10-15",
        "Content-Type": "application/vnd.api+json"})
    assert r.status_code == 202, r.text

    first = reconcile(f)
    assert found(first) == {**FLEET_OWNED, **FOR_PEOPLE}
    assert all(d["new"] for d in first["differences"])
    twoway = next(d for d in first["differences"] if d["type"] == "recon_consent_klaviyo_side")
    assert twoway["customer"] == ids["twoway"]

    repaired = reconcile(f, "--repair")
    assert found(repaired) == {**FLEET_OWNED, **FOR_PEOPLE} and repaired["repaired"] == len(FLEET_OWNED)
    f.wait_idle()

    def catalog_repaired() -> bool:  # the catalog outbox and stock figures leave on beat's flush_stock tick
        f.app.send_task("bcsync.flush_stock", args=[], queue="batch")
        f.wait_idle()
        held = f.klaviyo_state()["catalog"]["variants"]
        return variants[1] in held and held[variants[0]]["inventory_quantity"] != 4321

    wait_for(catalog_repaired, timeout=30, interval=0.5)
    after = reconcile(f)
    assert found(after) == FOR_PEOPLE
    assert not any(d["new"] for d in after["differences"])
    last = read_last(f.redis, f.prefix)  # what the console's Today page shows
    assert last is not None and last["left_for_people"] == len(FOR_PEOPLE) and last["repaired"] == 0
    assert reconcile(f, "--sample", "2", area="customers")["compared"] == {"customers": 2}
    assert reconcile(f, "--since", "2099-01-01", "--dry-run", area="consent")["compared"] == {}
    marked = [json.loads(v) for k in f.redis.scan_iter(f"{f.prefix}:ledger:*") if (v := f.redis.get(k))]
    assert any(e.get("repair") and e["key"] == f"profile:{ids['field']}:full" for e in marked)
    audit = subprocess.run([BCSYNC, "audit", "order", ids["order:missing_event"]], env={**f.env, "COLUMNS": "200"},
                           capture_output=True, text=True, timeout=60)
    assert audit.returncode == 0, audit.stderr[-2000:]
    assert "repair: re-sent by bcsync reconcile" in audit.stdout
