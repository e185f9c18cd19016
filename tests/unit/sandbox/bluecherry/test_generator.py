"""The seeded tenant: deterministic, realistic, and its inventory consistent with its open documents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sandbox.bluecherry.catalog import STOREFRONT_CHANNEL
from sandbox.bluecherry.clock import SandboxClock
from sandbox.bluecherry.generator import fast_stamper, generate_tenant
from sandbox.bluecherry.store import RecordStore
from sandbox.bluecherry.tenant import picked, reservations
from tests.unit.sandbox.bluecherry.conftest import BlueCherry


def generated(seed: int) -> RecordStore:
    store = RecordStore()
    clock = SandboxClock("America/New_York", "2026-11-20 12:00:00", frozen=True)
    generate_tenant(store, clock, seed=seed, customers=30, styles=5, orders=300, history_days=40)
    return store


def inventory_matches_documents(store: RecordStore) -> None:
    open_qty: Counter[tuple[str, str]] = Counter()
    pick_qty: Counter[tuple[str, str]] = Counter()
    for row in store.iterate("order"):
        open_qty.update(reservations(row.body))
    for row in store.iterate("pick"):
        pick_qty.update(picked(row.body))
    assert sum(open_qty.values()) > 0 and sum(pick_qty.values()) > 0
    for row in store.iterate("inventory"):
        key = (row.body["upc"], row.body["location"])
        assert row.body["qty_open"] == open_qty.pop(key, 0), key
        assert row.body["qty_pick"] == pick_qty.pop(key, 0), key
        assert row.body["qty_avail"] == row.body["qty_oh"] - row.body["qty_pick"]
    assert not +open_qty and not +pick_qty  # nothing reserved or picked outside an inventory record


def test_same_seed_same_tenant_other_seed_other_tenant() -> None:
    a, b, c = generated(1), generated(1), generated(2)
    rows = [[(r.nkey, r.last_mod, r.body) for r in s.iterate("order")] for s in (a, b, c)]
    assert rows[0] == rows[1]
    assert rows[0] != rows[2]


def test_generated_inventory_buckets_match_open_orders_and_picks() -> None:
    inventory_matches_documents(generated(3))


def test_ops_keep_inventory_consistent_with_documents(bc: BlueCherry, upc: str) -> None:
    bc.apply(
        {"op": "place_order", "customer": "C0000001", "lines": [{"upc": upc, "qty": 5}], "confirm": True},
    )
    order = bc.get("order", **{"$filter": "customer eq 'C0000001' and ord_status eq 'O'"})[-1]
    bc.apply(
        {"op": "pick", "ord_num": order["ord_num"], "lines": [{"line_seq": 1, "qty": 2}]},
        {"op": "cancel_line", "ord_num": order["ord_num"], "line_seq": 1, "qty": 1},
        {"op": "amend", "ord_num": order["ord_num"], "lines": [{"line_seq": 1, "qty": 7}]},
    )
    inventory_matches_documents(bc.sandbox.store)


def test_tenant_is_realistic_apparel_data(start_sandbox: Callable[..., BlueCherry]) -> None:
    bc = start_sandbox(orders=600, history_days=60)
    orders = bc.all("order", _include="all")
    assert {o["ord_type"] for o in orders} == {"WEB", "RTL", "WHL"}
    assert {o["sales_channel"] for o in orders} == {"WEB", "POS", "EDI"}
    assert {"E", "O", "P", "H", "X", "C"} <= {o["ord_status"] for o in orders}
    guests = [o for o in orders if o["customer"] == "WEBGUEST"]
    assert guests and all([a["email"] for a in o["orderaddress"]["rows"] if a["addr_type"] == "BT"][0] for o in guests)
    assert all(o["web_ref"].startswith("SHOP#") for o in orders if o["ord_type"] == "WEB")
    assert all(o["confirm_date"] for o in orders if o["ord_status"] != "E")
    customers = bc.all("customer")
    assert {c["email_optin"] for c in customers} == {"Y", "N"}
    assert all(c["email_optin_date"] and c["email_optin_source"] for c in customers if c["email_optin"] == "Y")
    picks = bc.all("pick")
    assert {"O", "S"} <= {p["pick_status"] for p in picks}
    assert all(p["tracking_num"] and p["shipper"] and p["ship_date"] for p in picks if p["pick_status"] == "S")
    assert bc.all("creditmemo") and bc.all("invoice")
    styles = bc.all("style", _include="all")
    assert all(s["stylecolorsizes"]["rows-i"] and s["group_code1"] for s in styles)


def test_fast_stamps_equal_the_clock_across_daylight_saving_changes() -> None:
    for zone in ("America/New_York", "Europe/London", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"):
        clock = SandboxClock(zone, "2026-01-01 00:00:00", frozen=True)
        stamp = fast_stamper(clock)
        start = clock.timestamp()
        for step in range(0, 366 * 86400, 3607):  # every hour-and-a-bit over a year hits both changes
            assert stamp(start + step) == clock.local_stamp(start + step), (zone, step)


def test_a_tenant_without_customers_still_takes_orders_from_guests_and_wholesale() -> None:
    store = RecordStore()
    clock = SandboxClock("America/New_York", "2026-11-20 12:00:00", frozen=True)
    counts = generate_tenant(store, clock, seed=5, customers=0, styles=1, orders=100, history_days=20)
    assert counts["orders"] == 100
    assert {
        r.body["customer"] == "WEBGUEST" or r.body["customer"].startswith("W0") for r in store.iterate("order")
    } == {True}


def test_nothing_is_stamped_after_the_clock_and_no_two_customers_share_an_email() -> None:
    # a record stamped in the future holds a poller's watermark past "now": changes made meanwhile go unseen
    store = generated(7)
    for resource in ("customer", "order", "pick", "invoice", "creditmemo", "style", "inventory"):
        latest = max(row.last_mod for row in store.iterate(resource))
        assert latest <= "2026-11-20 12:00:00", (resource, latest)
    emails = Counter(row.body["email"] for row in store.iterate("customer") if row.body.get("email"))
    assert max(emails.values()) == 1, emails.most_common(3)


def test_storefront_orders_some_without_their_reference_leave_the_rest_of_the_tenant_as_it_was() -> None:
    def tenant(every: int) -> dict[str, list[dict[str, object]]]:
        store = RecordStore()
        clock = SandboxClock("America/New_York", "2026-11-20 12:00:00", frozen=True)
        generate_tenant(store, clock, seed=7, customers=30, styles=4, orders=40, history_days=120,
                        storefront_every=every)
        return {r: [row.body for row in store.iterate(r)] for r in ("order", "pick", "creditmemo", "inventory")}

    plain, with_storefront = tenant(0), tenant(5)
    for resource in ("pick", "creditmemo", "inventory"):
        assert plain[resource] == with_storefront[resource], resource
    changed = [(before, after) for before, after in zip(plain["order"], with_storefront["order"], strict=True)
               if before != after]
    assert changed and all({k for k in before if before[k] != after[k]} <= {"sales_channel", "web_ref"}
                           for before, after in changed), "only the channel and the reference differ"
    assert {after["sales_channel"] for _, after in changed} == {STOREFRONT_CHANNEL}
    assert all(before["sales_channel"] == "WEB" and before["web_ref"] for before, _ in changed)
    missing = [after["ord_num"] for _, after in changed if not after["web_ref"]]
    assert 0 < len(missing) < len(changed), missing
