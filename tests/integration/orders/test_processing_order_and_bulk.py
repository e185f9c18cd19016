"""Order of processing and bulk status updates, end to end (both sandboxes, real workers, real Redis).

This module's fleet has a low `lifecycle.bulk_threshold` (3) and a Klaviyo sandbox that records every request,
so a test can tell which API carried each order's events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from tests.integration.orders.conftest import OrderFleet, running_fleet
from tests.support.recording import recorded_requests
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration

THRESHOLD = 3
MAPPING = f"""
[lifecycle]
bulk_threshold = {THRESHOLD}
"""
PLACED, ORDERED, FULFILLED = "Placed Order", "Ordered Product", "Fulfilled Order"
CANCELLED, REFUNDED = "Cancelled Order", "Refunded Order"


@pytest.fixture(scope="module")
def recorded_fleet(redis_server: PrivateRedis,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OrderFleet, Path]]:
    folder = tmp_path_factory.mktemp("orders-e2e-bulk")
    record = folder / "klaviyo-requests.jsonl"
    klaviyo = KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record)
    with running_fleet(redis_server, folder, MAPPING, klaviyo) as fleet:
        yield fleet, record


def klaviyo_view(f: OrderFleet, orders: list[str], customers: list[str]) -> dict[str, Any]:
    """What Klaviyo holds for these orders and customers, without the sandbox's own ids."""
    kept = ("unique_id", "time", "value", "value_currency", "backfill", "properties")
    events: dict[str, list[str]] = {}
    for order in orders:
        for metric, evs in f.events(order).items():
            events.setdefault(metric, []).extend(json.dumps({k: e[k] for k in kept}, sort_keys=True) for e in evs)
    aggregates = {c: {k: v for k, v in f.profile(external_id=c)["properties"].items() if k.startswith("erp_")}
                  for c in customers}
    return {"events": {m: sorted(v) for m, v in events.items()}, "aggregates": aggregates}


def duplicates_suppressed(f: OrderFleet) -> int:
    return int(httpx.get(f"{f.klaviyo_url}/_sandbox/stats", timeout=30).json()["duplicates_suppressed"])


def test_the_same_history_processed_backwards_ends_in_the_same_klaviyo_state(
        recorded_fleet: tuple[OrderFleet, Path]) -> None:
    f, _ = recorded_fleet
    customer = f.new_customer()
    upc = f.upcs[0]
    # History: two confirmed orders; one is cancelled in full, the other shipped, invoiced and refunded.
    cancelled = f.new_order(customer=customer, lines=[{"upc": upc, "qty": 2, "price": 35}], confirm=True)
    shipped = f.new_order(customer=customer, lines=[{"upc": upc, "qty": 1, "price": 80}], confirm=True)
    steps = [f.capture()]
    f.apply({"op": "cancel", "ord_num": cancelled}, {"op": "ship", "ord_num": shipped})
    steps.append(f.capture())
    f.apply({"op": "credit_memo", "inv_num": _invoice_of(f, shipped), "amount": 12.5})
    steps.append(f.capture())
    assert all(steps), "every step changed something"

    # In order: each cycle's changes delivered and processed before the next.
    for events in steps:
        f.emit(events)
        f.wait_idle()
    in_order = klaviyo_view(f, [cancelled, shipped], [customer])
    assert {m: len(v) for m, v in in_order["events"].items()} == {PLACED: 2, ORDERED: 2, CANCELLED: 1,
                                                                  FULFILLED: 1, REFUNDED: 1}
    assert duplicates_suppressed(f) == 0

    # Backwards, from scratch: forget the fleet's state and Klaviyo's, then deliver the very same change
    # events newest first, so the cancellation, the memo and the pick are handled before the placement.
    fleet_keys = [k for k in f.redis.scan_iter(f"{f.prefix}:*") if not k.startswith(f"{f.prefix}:broker:")]
    f.redis.delete(*fleet_keys)
    httpx.post(f"{f.klaviyo_url}/_sandbox/reset", timeout=30).raise_for_status()
    f.emit([event for events in reversed(steps) for event in reversed(events)])
    f.wait_idle()

    backwards = klaviyo_view(f, [cancelled, shipped], [customer])
    assert backwards == in_order
    assert duplicates_suppressed(f) == 0, "nothing was sent twice"
    erp = backwards["aggregates"][customer]
    assert erp["erp_order_count"] == 1, "the cancelled order does not count"
    gross = f.events(shipped)[PLACED][0]["value"]  # tax included, as the mapping says by default
    assert erp["erp_gross_revenue"] == gross and erp["erp_refunds"] == 12.5
    assert erp["erp_net_lifetime_value"] == round(gross - 12.5, 2)
    assert f.dead_letters() == 0


def test_a_bulk_status_update_goes_through_the_bulk_events_api(recorded_fleet: tuple[OrderFleet, Path]) -> None:
    f, record = recorded_fleet
    customer = f.new_customer()
    upc = f.upcs[0]
    orders = [f.new_order(customer=customer, lines=[{"upc": upc, "qty": 1, "price": 10 + n}])
              for n in range(THRESHOLD + 5)]
    f.poll()  # entered: nothing to send
    assert all(f.events(order) == {} for order in orders)

    f.apply(*[{"op": "confirm", "ord_num": order} for order in orders])  # one cycle confirms them all
    f.poll()

    for order in orders:
        assert f.unique_ids(order) == {PLACED: [order], ORDERED: [f"{order}:1"]}
    single, bulk = _orders_by_api(record, orders)
    assert single | bulk == set(orders) and not single & bulk, "each order's events went one way only"
    assert len(single) <= THRESHOLD, f"only the first {THRESHOLD} changes may precede the bulk detection"
    assert len(bulk) >= len(orders) - THRESHOLD
    assert duplicates_suppressed(f) == 0
    assert f.profile(external_id=customer)["properties"]["erp_order_count"] == len(orders)
    assert f.dead_letters() == 0


def test_cancellations_of_a_bulk_cycle_stay_on_the_fast_lane(recorded_fleet: tuple[OrderFleet, Path]) -> None:
    """A stock-out cancels many placed orders in one cycle (20x the bulk threshold): the cycle is bulk, but the
    Cancelled Order events are urgent and go one by one on the fast lane (single `POST /api/events`), not in
    bulk jobs behind the batch lane's backlog (issue 14, item 3)."""
    f, record = recorded_fleet
    customer = f.new_customer()
    upc = f.upcs[0]
    orders = [f.new_order(customer=customer, lines=[{"upc": upc, "qty": 1, "price": 20 + n}])
              for n in range(THRESHOLD * 20)]
    f.apply(*[{"op": "confirm", "ord_num": order} for order in orders])
    f.poll()
    assert all(f.unique_ids(order).get(PLACED) == [order] for order in orders)

    f.apply(*[{"op": "cancel", "ord_num": order} for order in orders])  # the stock-out: one cycle
    f.poll()
    assert all(f.unique_ids(order).get(CANCELLED) == [order] for order in orders)
    single, bulk = _orders_by_api(record, orders, CANCELLED)
    assert bulk == set(), f"{len(bulk)} cancellations went in bulk jobs (the batch lane)"
    assert single == set(orders)
    _, bulk_placed = _orders_by_api(record, orders, PLACED)
    assert bulk_placed, "the confirmations were a bulk cycle too (the threshold is met)"
    assert f.dead_letters() == 0


def _orders_by_api(record: Path, orders: list[str], metric: str | None = None) -> tuple[set[str], set[str]]:
    """ERP order numbers whose events (of `metric`, or any) reached Klaviyo by single `POST /api/events`, and
    by bulk jobs."""
    wanted = set(orders)
    single: set[str] = set()
    bulk: set[str] = set()
    for request in recorded_requests(record):
        if request["method"] != "POST" or not isinstance(request["body"], dict):
            continue
        if request["path"] == "/api/events":
            attributes = [request["body"]["data"]["attributes"]]
            into = single
        elif request["path"] == "/api/event-bulk-create-jobs":
            groups = request["body"]["data"]["attributes"]["events-bulk-create"]["data"]
            attributes = [e["attributes"] for g in groups for e in g["attributes"]["events"]["data"]]
            into = bulk
        else:
            continue
        if metric is not None:
            attributes = [a for a in attributes if a["metric"]["data"]["attributes"]["name"] == metric]
        into |= {a["properties"].get("ErpOrderNumber") for a in attributes} & wanted
    return single, bulk


def _invoice_of(f: OrderFleet, order: str) -> str:
    for page in f.bc.iter_pages(f.mapping.resources.invoice, None):
        for record in page:
            if str(record["ord_num"]) == order:
                return str(record["inv_num"])
    raise AssertionError(f"no invoice for order {order}")
