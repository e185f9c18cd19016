"""Reconciliation's comparison (pure): each difference type from a desired side built with the fleet's own
functions and a held side shaped like Klaviyo's read answers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from config.mapping import Mapping
from sync.customers.profiles import profile_operation
from sync.customers.records import CustomerRecord
from sync.operations import Operation
from sync.reconcile import compare as c
from sync.reconcile import differences as d
from sync.reconcile.held import HeldEvent, HeldProfile, HeldVariant

MAPPING = Mapping()


def customer(code: str = "C1", **kw: object) -> CustomerRecord:
    base: dict[str, object] = {"code": code, "email": f"{code.lower()}@example.com", "status": "A", "active": True,
                               "first_name": "Ann", "last_name": "Lee", "phone_e164": None}
    return CustomerRecord(**{**base, **kw})  # type: ignore[arg-type]


def desired(cust: CustomerRecord) -> c.DesiredCustomer:
    return c.DesiredCustomer(cust, profile_operation(cust, MAPPING, "full", "default", "v1"))


def held(pid: str, cust: CustomerRecord, **kw: object) -> HeldProfile:
    base: dict[str, object] = {"id": pid, "email": cust.email, "external_id": cust.code,
                               "first_name": cust.first_name, "last_name": cust.last_name}
    return HeldProfile(**{**base, **kw})  # type: ignore[arg-type]


def types(diffs: list[d.Difference]) -> list[str]:
    return sorted(x.type for x in diffs)


def test_profiles_agree_then_each_kind_of_difference() -> None:
    a, b = customer("C1"), customer("C2")
    diffs, match = c.compare_profiles([desired(a)], [held("P1", a)], complete=True, known_codes={"C1"})
    assert diffs == [] and match.own["C1"].id == "P1"

    diffs, _ = c.compare_profiles([desired(a)], [], complete=True, known_codes={"C1"})
    assert types(diffs) == [d.PROFILE_MISSING] and diffs[0].fleet_owned
    assert diffs[0].repair[0].repair and diffs[0].repair[0].lane == "batch"

    diffs, _ = c.compare_profiles([desired(a)], [held("P1", a, first_name="Anne")], complete=True, known_codes={"C1"})
    assert types(diffs) == [d.PROFILE_FIELD]
    assert diffs[0].desired == {"first_name": "Ann"} and diffs[0].actual == {"first_name": "Anne"}

    split = [held("P1", a), HeldProfile(id="P9", email=None, phone_number="+15555550100")]
    diffs, match = c.compare_profiles([desired(customer("C1", phone_e164="+15555550100"))], split, complete=True,
                                      known_codes={"C1"})
    assert types(diffs) == [d.PROFILE_SPLIT] and not diffs[0].fleet_owned and "C1" in match.split

    diffs, _ = c.compare_profiles([desired(a)], [held("P1", a), held("P2", b)], complete=True, known_codes={"C1"})
    assert types(diffs) == [d.PROFILE_EXTRA]
    diffs, _ = c.compare_profiles([desired(a)], [held("P1", a), held("P2", b)], complete=False, known_codes={"C1"})
    assert diffs == []  # a sample cannot tell an extra profile

    diffs, _ = c.compare_profiles([desired(a), desired(b)], [held("P2", b)], complete=True,
                                  known_codes={"C1", "C2"}, event_profiles={"C1": {"P2"}})
    assert types(diffs) == [d.PROFILE_MERGED] and not diffs[0].fleet_owned


def subscribed(when: str = "2026-01-01T00:00:00+00:00") -> dict[str, object]:
    return {"email": {"marketing": {"consent": "SUBSCRIBED", "consent_timestamp": when}}}


def unsubscribed(when: str) -> dict[str, object]:
    return {"email": {"marketing": {"consent": "UNSUBSCRIBED", "consent_timestamp": when}}}


def test_consent_both_directions_and_two_way() -> None:
    optin = customer("C1", email_optin=True, email_optin_date=datetime(2026, 3, 1))
    # ERP subscribed, Klaviyo never: the fleet re-sends (fast)
    diffs = c.compare_consent(optin, held("P1", optin), MAPPING, "v1")
    assert types(diffs) == [d.CONSENT_MISMATCH] and diffs[0].repair[0].kind == "subscribe"
    assert diffs[0].repair[0].lane == "fast" and diffs[0].repair[0].repair
    # ERP subscribed, Klaviyo unsubscribed later: Klaviyo's side, reported to ecommerce with the code
    diffs = c.compare_consent(optin, held("P1", optin, subscriptions=unsubscribed("2026-06-01T00:00:00Z")),
                              MAPPING, "v1")
    assert types(diffs) == [d.CONSENT_KLAVIYO_SIDE] and diffs[0].customer == "C1" and not diffs[0].repair
    # ERP opted out after Klaviyo's subscription: the fleet unsubscribes
    out = customer("C1", email_optin=False, email_optin_date=datetime(2026, 5, 1))
    diffs = c.compare_consent(out, held("P1", out, subscriptions=subscribed()), MAPPING, "v1")
    assert types(diffs) == [d.CONSENT_MISMATCH] and diffs[0].repair[0].kind == "unsubscribe"
    # ERP never opted in, Klaviyo subscribed (a sign-up the ERP does not know): Klaviyo's side
    never = customer("C1")
    diffs = c.compare_consent(never, held("P1", never, subscriptions=subscribed()), MAPPING, "v1")
    assert types(diffs) == [d.CONSENT_KLAVIYO_SIDE]
    assert c.compare_consent(optin, held("P1", optin, subscriptions=subscribed()), MAPPING, "v1") == []


def event(metric: str, uid: str, value: float, number: str = "SO1") -> Operation:
    return Operation(kind="event", key=f"event:{metric}:{uid}", payload={
        "metric": metric, "unique_id": uid, "value": value, "profile": {"external_id": "C1"}})


def seen(op: Operation, value: float | None = None, eid: str = "E1", when: str = "") -> HeldEvent:
    v = op.payload["value"] if value is None else value
    return HeldEvent(id=eid, metric=op.payload["metric"], key=op.key, value=Decimal(str(v)), profile_id="P1",
                     time=when, order="SO1")


def test_orders_missing_extra_value_and_revenue() -> None:
    placed, fulfilled = event("Placed Order", "SO1", 100.0), event("Fulfilled Order", "SO1:fulfilled:P1", 60.0)
    refunded = event("Refunded Order", "SO1", 20.0)
    order = c.DesiredOrder("SO1", "C1", (placed, fulfilled, refunded))
    good = [seen(placed, eid="E1"), seen(fulfilled, eid="E2"), seen(refunded, eid="E3")]
    assert c.compare_orders([order], good, MAPPING) == []

    diffs = c.compare_orders([order], good[:2], MAPPING)
    assert types(diffs) == [d.EVENT_MISSING] and diffs[0].repair[0].key == refunded.key
    diffs = c.compare_orders([order], [good[0], seen(fulfilled, 55.0, "E2"), good[2]], MAPPING)
    assert types(diffs) == [d.EVENT_VALUE] and not diffs[0].fleet_owned
    diffs = c.compare_orders([order], [good[0], good[1], seen(refunded, 25.0, "E3")], MAPPING)
    assert types(diffs) == [d.REVENUE_MISMATCH] and diffs[0].desired == "80.00" and diffs[0].actual == "75.00"
    stray = seen(event("Cancelled Order", "SO1", 100.0), eid="E4")
    diffs = c.compare_orders([order], [*good, stray], MAPPING)
    assert types(diffs) == [d.EVENT_EXTRA]
    # an amended order: the latest Updated Order carries the current value, the Placed the first one
    upd = HeldEvent(id="E5", metric="Updated Order", key="event:Updated Order:SO1:updated:x", value=Decimal("100"),
                    profile_id="P1", time="2026-02-01T00:00:00Z", order="SO1")
    assert c.compare_orders([order], [seen(placed, 90.0, "E1"), *good[1:], upd], MAPPING) == []


def test_aggregates_stock_catalog() -> None:
    a = customer("C1")
    agg = {"erp_order_count": 2, "erp_gross_revenue": 150.0, "erp_first_order_date": "2026-01-01T00:00:00+00:00"}
    op = Operation(kind="profile_upsert", key="profile-aggregates:external_id:C1", payload={"properties": agg})
    ok = held("P1", a, properties={"erp_order_count": 2, "erp_gross_revenue": "150.00",
                                   "erp_first_order_date": "2026-01-01T00:00:00Z"})
    assert c.compare_aggregates("C1", agg, ok, op) == []
    bad = held("P1", a, properties={**ok.properties, "erp_gross_revenue": 10})
    diffs = c.compare_aggregates("C1", agg, bad, op)
    assert types(diffs) == [d.AGGREGATE_MISMATCH] and diffs[0].fleet_owned
    assert c.compare_aggregates("C1", {"erp_order_count": 0, "erp_first_order_date": None}, held("P1", a), op) == []

    inv = Operation(kind="variant_inventory", key="stock:V1", payload={"external_id": "V1", "inventory_quantity": 5})
    assert c.compare_stock({"V1": (5, inv)}, {"V1": HeldVariant("V1", 5)}) == []
    diffs = c.compare_stock({"V1": (5, inv)}, {"V1": HeldVariant("V1", 7)})
    assert types(diffs) == [d.STOCK_MISMATCH] and diffs[0].repair[0].lane == "batch"

    item = Operation(kind="catalog_item_upsert", key="catalog-item:S1", payload={"external_id": "S1"})
    diffs = c.compare_catalog({"S1": item}, {"V1": inv}, set(), {"V1"})
    assert types(diffs) == [d.CATALOG_MISSING] and diffs[0].record_key == "catalog-item:S1"
