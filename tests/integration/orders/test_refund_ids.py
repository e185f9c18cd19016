"""Refunds counted once (issue 14, item 2), end to end: Blue Cherry sandbox -> poller -> real workers (every lane
at concurrency 2) on real Redis -> Klaviyo sandbox. Per order, Klaviyo's Refunded Order events must be the ERP's
credit memos, each once, one of them under the order-level id and every other under `<order>:refund:<memo>`,
no unique_id twice - whatever the order in which the memos are read and computed, and after the fleet's Redis
state is lost."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from sync.changes import ChangeEvent
from tests.integration.orders.conftest import OrderFleet
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration

REFUNDED = "Refunded Order"
STAMP = "%Y-%m-%d %H:%M:%S"


def shop_ref(number: str) -> str:
    return f"SHOP#{number}"


def shipped_and_invoiced(f: OrderFleet) -> tuple[str, str]:
    """A customer's confirmed order, shipped and invoiced, all of it in Klaviyo: (order, invoice)."""
    customer = f.new_customer()
    order = f.new_order(customer=customer, lines=[{"upc": f.upcs[0], "qty": 2, "price": 40}], confirm=True)
    touched = f.apply({"op": "ship", "ord_num": order})
    invoice = next(str(t["record"]["inv_num"]) for t in touched if t["resource"] == "invoice")
    f.poll()
    return order, invoice


def credit(f: OrderFleet, invoice: str, amount: float, **params: Any) -> str:
    touched = f.apply({"op": "credit_memo", "inv_num": invoice, "amount": amount, **params})
    return next(str(t["record"]["memo_num"]) for t in touched if t["resource"] == "creditmemo")


def refunds_of(f: OrderFleet, order: str) -> list[dict[str, Any]]:
    return f.events(order).get(REFUNDED, [])


def assert_counted_once(f: OrderFleet, order: str, memos: dict[str, float]) -> dict[str, str]:
    """Klaviyo's refunds of the order are the ERP's memos, each once; returns memo -> unique_id."""
    refunds = refunds_of(f, order)
    ids = [e["unique_id"] for e in refunds]
    assert len(ids) == len(set(ids)), f"a unique_id twice: {ids}"
    seen = Counter(str(e["properties"]["CreditMemo"]) for e in refunds)
    assert seen == Counter(list(memos)), f"each memo once: Klaviyo has {dict(seen)}, the ERP {sorted(memos)}"
    assert round(sum(e["value"] for e in refunds), 2) == round(sum(memos.values()), 2), "refunded total"
    given = {str(e["properties"]["CreditMemo"]): e["unique_id"] for e in refunds}
    assert sorted(given.values()).count(shop_ref(order)) == 1, "one memo under the order-level id"
    assert all(uid in (shop_ref(order), f"{order}:refund:{memo}") for memo, uid in given.items()), given
    return given


def memo_changes(events: list[ChangeEvent]) -> dict[str, ChangeEvent]:
    return {str(e.record["memo_num"]): e for e in events if e.resource == "creditmemo"}


def refund_computed(f: OrderFleet, order: str) -> bool:
    return bool(f.redis.hexists(f"{f.prefix}:orders:computed:{order}", f"event:{REFUNDED}:{shop_ref(order)}"))


def set_faults(f: OrderFleet, **faults: Any) -> None:
    httpx.post(f"{f.klaviyo_url}/_sandbox/faults", json={"clear": True, **faults}, timeout=10).raise_for_status()


def test_two_memos_of_one_cycle_the_later_dated_computed_first(order_fleet: OrderFleet) -> None:
    """The later-dated memo's change is computed first, and its Refunded Order is still on its way to Klaviyo
    (events answer 2 s late) when the earlier-dated memo's change is computed by the other worker."""
    f = order_fleet
    order, invoice = shipped_and_invoiced(f)
    first = credit(f, invoice, 10.0)
    later = credit(f, invoice, 5.0)  # dated a minute after the first (the sandbox clock moves on)
    changes = f.capture()
    memos = memo_changes(changes)
    set_faults(f, latency_ms=2000, endpoints=["POST /api/events", "POST /api/event-bulk-create-jobs"])
    try:
        f.emit([memos[later]])
        wait_for(lambda: refund_computed(f, order), 20, message="the later memo's refund computed")
        f.emit([memos[first], *[e for e in changes if e.resource != "creditmemo"]])
        f.wait_idle()
    finally:
        set_faults(f)
    given = assert_counted_once(f, order, {first: 10.0, later: 5.0})
    # the memo given the order-level id when the order's first refund was computed keeps it
    assert given == {later: shop_ref(order), first: f"{order}:refund:{first}"}
    assert f.dead_letters() == 0


def test_two_memos_of_one_cycle_computed_at_once_later_dated_first(order_fleet: OrderFleet) -> None:
    f = order_fleet
    order, invoice = shipped_and_invoiced(f)
    first = credit(f, invoice, 12.0)
    later = credit(f, invoice, 7.0)
    changes = f.capture()
    memos = memo_changes(changes)
    set_faults(f, latency_ms=1000, endpoints=["POST /api/events", "POST /api/event-bulk-create-jobs"])
    try:
        f.emit([memos[later], memos[first]])  # two workers take them at once
        f.wait_idle()
    finally:
        set_faults(f)
    assert_counted_once(f, order, {first: 12.0, later: 7.0})
    assert f.dead_letters() == 0


def test_a_backdated_memo_after_the_fleets_state_is_lost(order_fleet: OrderFleet) -> None:
    f = order_fleet
    order, invoice = shipped_and_invoiced(f)
    now = httpx.get(f"{f.bc_url}/_sandbox/clock", timeout=10).json()["now"]
    backdate = (datetime.strptime(now, STAMP) - timedelta(minutes=5)).strftime(STAMP)  # before every memo
    one = credit(f, invoice, 50.0)
    two = credit(f, invoice, 30.0)
    f.poll()
    before = assert_counted_once(f, order, {one: 50.0, two: 30.0})
    # one of them carries the order-level id: the earliest the fleet knew of (at concurrency 2, either may be
    # stored first); where it went, it stays
    assert shop_ref(order) in (before[one], before[two])

    # Lose every bit of fleet state (ledger, order state, refund ids, watermarks), keep the broker.
    fleet_keys = [k for k in f.redis.scan_iter(f"{f.prefix}:*", count=1000)
                  if not k.startswith(f"{f.prefix}:broker:")]
    f.redis.delete(*fleet_keys)
    early = credit(f, invoice, 20.0, memo_date=backdate)  # dated before every other memo of the order
    f.poll()  # the poller re-reads everything from its configured start

    after = assert_counted_once(f, order, {one: 50.0, two: 30.0, early: 20.0})
    assert after == {**before, early: f"{order}:refund:{early}"}, "the order-level id stays where it went"
    assert f.dead_letters() == 0
