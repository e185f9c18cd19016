"""Desired against held, field by field: the typed differences of `sync.reconcile.differences`.

The desired side is built by the caller with the fleet's own functions (`sync.customers.profiles`,
`sync.customers.consent`, `sync.orders.desired`, `sync.orders.aggregates`, `sync.stock.ats`,
`sync.catalog.transform`), so a rule is implemented once; the independent check of those rules is the oracle
(testing/oracle). Each function here only matches and compares, and attaches the fleet's own operations (marked
`repair`) to the differences re-delivery fixes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from config.mapping import Mapping
from sync.customers.consent import (
    CHANNEL_FIELDS,
    ConsentIntent,
    consent_operation,
    erp_instant,
    first_sync_opt_out,
    guard_conflict,
)
from sync.customers.records import CustomerRecord
from sync.operations import Operation
from sync.reconcile import differences as d
from sync.reconcile.differences import Difference
from sync.reconcile.held import HeldEvent, HeldProfile, HeldVariant

CENT = Decimal("0.01")
COMPARED_FIELDS = ("email", "phone_number", "external_id", "first_name", "last_name")


def repaired(op: Operation, lane: str | None = None) -> Operation:
    """The fleet's operation as a repair: marked (the ledger and audit show it, delivery sends it even though
    the ledger holds its key) and on the batch lane unless told otherwise (consent repairs go fast)."""
    return op.model_copy(update={"repair": True, "lane": lane or ("fast" if op.lane == "fast" else "batch")})


@dataclass(frozen=True)
class DesiredCustomer:
    customer: CustomerRecord
    upsert: Operation  # its full profile upsert, as the fleet builds it


@dataclass
class ProfileMatch:
    """Which held profile is each customer's own (by external_id, else email, else phone)."""

    own: dict[str, HeldProfile] = field(default_factory=dict)
    split: set[str] = field(default_factory=set)


def _index(held: Iterable[HeldProfile]) -> dict[str, dict[str, list[HeldProfile]]]:
    index: dict[str, dict[str, list[HeldProfile]]] = {"external_id": defaultdict(list), "email": defaultdict(list),
                                                      "phone_number": defaultdict(list)}
    for p in held:
        for name in index:
            value = getattr(p, name)
            if value:
                index[name][value.lower() if name == "email" else value].append(p)
    return index


def _value(attrs: dict[str, Any], name: str) -> Any:
    value = attrs.get(name)
    return value.lower() if name == "email" and isinstance(value, str) else value


def compare_profiles(customers: list[DesiredCustomer], held: list[HeldProfile], *, complete: bool,
                     known_codes: set[str], event_profiles: dict[str, set[str]] | None = None,
                     ) -> tuple[list[Difference], ProfileMatch]:
    """Missing, merged, split, field mismatch per customer; extra profiles when `complete` (every Klaviyo
    profile was read): one whose external_id is no customer Blue Cherry knows (`known_codes`, erased ones left
    out). `event_profiles`: customer -> the profiles its order events sit on (a hand merge moves them)."""
    index = _index(held)
    by_id = {p.id: p for p in held}
    out: list[Difference] = []
    match = ProfileMatch()
    for want in customers:
        c = want.customer
        found = {p.id: p for p in (*index["external_id"].get(c.code, ()), *index["email"].get(c.email.lower(), ()),
                                   *(index["phone_number"].get(c.phone_e164, ()) if c.phone_e164 else ()))}
        desired = {k: _value(want.upsert.payload, k) for k in COMPARED_FIELDS}
        if not found:
            hosts = sorted({pid for pid in (event_profiles or {}).get(c.code, set()) if pid in by_id})
            if hosts:  # its events live on another customer's profile: merged in Klaviyo, a person decides
                host = by_id[hosts[0]]
                out.append(Difference(d.PROFILE_MERGED, f"customer:{c.code}",
                                      f"customer {c.code} has no profile; its events are on profile {host.id} "
                                      f"(external_id {host.external_id}): merged in Klaviyo",
                                      desired, {"profile": host.id, "external_id": host.external_id},
                                      customer=c.code))
                continue
            out.append(Difference(d.PROFILE_MISSING, f"customer:{c.code}", f"customer {c.code} has no profile",
                                  desired, None, customer=c.code, repair=(repaired(want.upsert),)))
            continue
        own = next(iter(index["external_id"].get(c.code, ()) or index["email"].get(c.email.lower(), ())
                        or found.values()))
        match.own[c.code] = own
        if len(found) > 1:
            match.split.add(c.code)
            out.append(Difference(d.PROFILE_SPLIT, f"customer:{c.code}",
                                  f"customer {c.code} is spread over {len(found)} profiles",
                                  desired, sorted(found), customer=c.code))
            continue  # the fields of a split customer are not compared: the split says it
        actual = {k: _value(own.__dict__, k) for k in COMPARED_FIELDS}
        wrong = sorted(k for k in COMPARED_FIELDS if k in want.upsert.payload and desired[k] != actual[k])
        if wrong:
            out.append(Difference(d.PROFILE_FIELD, f"customer:{c.code}",
                                  f"profile {own.id} differs in {', '.join(wrong)}",
                                  {k: desired[k] for k in wrong}, {k: actual[k] for k in wrong}, customer=c.code,
                                  repair=(repaired(want.upsert),)))
    if complete:
        for code, profiles in sorted(index["external_id"].items()):
            if code not in known_codes:
                for p in profiles:
                    out.append(Difference(d.PROFILE_EXTRA, f"profile:{p.id}",
                                          f"profile {p.id} has external_id {code}, no customer in Blue Cherry",
                                          None, {"external_id": code, "email": p.email}, customer=code))
    return out, match


def compare_consent(customer: CustomerRecord, own: HeldProfile | None, mapping: Mapping,
                    version: str) -> list[Difference]:
    """Per channel, both directions. The ERP newer (or Klaviyo never told otherwise): the fleet re-sends the
    ERP's consent on the fast lane. Klaviyo newer (an unsubscribe, or an opt-in, the ERP does not know):
    reported to ecommerce with the customer code, never overwritten - the ERP is updated by people."""
    if own is None:
        return []
    zone = ZoneInfo(mapping.tenant.timezone)
    out: list[Difference] = []
    for channel in CHANNEL_FIELDS:
        opted_in = customer.email_optin if channel == "email" else customer.sms_optin
        address = customer.email if channel == "email" else customer.phone_e164
        want = bool(opted_in and address)
        held = own.consent(channel)
        erp_time = erp_instant(customer.email_optin_date if channel == "email" else customer.sms_optin_date, zone)
        key = f"consent:{channel}:{customer.code}"
        desired_text = "SUBSCRIBED" if want else "not SUBSCRIBED"
        if want and held != "SUBSCRIBED":
            conflict = guard_conflict(own.subscriptions, channel, erp_time)
            if conflict:
                out.append(Difference(d.CONSENT_KLAVIYO_SIDE, key,
                                      f"{channel}: ERP subscribed, Klaviyo {held}: {conflict}", desired_text,
                                      held, customer=customer.code))
            else:
                intent = ConsentIntent(channel, "subscribe", customer, first_sync=False)
                out.append(Difference(d.CONSENT_MISMATCH, key, f"{channel}: ERP subscribed, Klaviyo {held}",
                                      desired_text, held, customer=customer.code,
                                      repair=(repaired(consent_operation(intent, mapping, version), "fast"),)))
        elif not want and held == "SUBSCRIBED":
            send, conflict = first_sync_opt_out(own.subscriptions, channel, erp_time)
            if send:
                intent = ConsentIntent(channel, "unsubscribe", customer, first_sync=False)
                out.append(Difference(d.CONSENT_MISMATCH, key, f"{channel}: ERP not subscribed, Klaviyo SUBSCRIBED",
                                      desired_text, held, customer=customer.code,
                                      repair=(repaired(consent_operation(intent, mapping, version), "fast"),)))
            else:
                out.append(Difference(d.CONSENT_KLAVIYO_SIDE, key, f"{channel}: {conflict}", desired_text, held,
                                      customer=customer.code))
    return out


@dataclass(frozen=True)
class DesiredOrder:
    number: str
    customer: str | None  # the customer code (None: a guest's order)
    events: tuple[Operation, ...]  # every event the order needs, as the fleet computes it on an empty ledger


def _money(value: Decimal | float | None) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def compare_orders(orders: list[DesiredOrder], held: list[HeldEvent], mapping: Mapping) -> list[Difference]:
    """Missing or extra events by the fleet's key, values of the non-revenue events one by one, and per order
    the revenue Klaviyo sums (Placed, or the latest Updated, - Cancelled - Refunded) against the ERP's net
    over the events both sides hold (a missing or extra event is reported as such, not twice)."""
    metrics = mapping.metrics
    sign = {metrics.placed_order: 1, metrics.cancelled_order: -1, metrics.refunded_order: -1}
    by_key: dict[str, list[HeldEvent]] = defaultdict(list)
    updated: dict[str, list[HeldEvent]] = defaultdict(list)
    for event in held:
        if event.key:
            by_key[event.key].append(event)
            if event.metric == metrics.updated_order and event.order:
                updated[event.order].append(event)
    out: list[Difference] = []
    for order in orders:
        wanted = {op.key: op for op in order.events}
        desired_sum = actual_sum = Decimal(0)
        compared = False
        for key, op in wanted.items():
            metric, value = op.payload["metric"], _money(op.payload.get("value"))
            events = by_key.get(key, [])
            if not events:
                out.append(Difference(d.EVENT_MISSING, key, f"order {order.number}: {metric} "
                                      f"{op.payload['unique_id']} is not in Klaviyo", {"value": str(value)}, None,
                                      customer=order.customer, repair=(repaired(op),)))
                continue
            got = events[0]
            for extra in events[1:]:
                out.append(Difference(d.EVENT_EXTRA, f"{key}#{extra.id}", f"order {order.number}: {metric} "
                                      f"stored twice (event {extra.id})", None, {"event": extra.id},
                                      customer=order.customer))
            if metric in sign:
                compared = True
                held_value = _money(got.value)
                if metric == metrics.placed_order and updated.get(order.number):
                    held_value = _money(max(updated[order.number], key=lambda e: e.time).value)
                desired_sum += sign[metric] * value
                actual_sum += sign[metric] * held_value
            elif abs(_money(got.value) - value) > CENT:
                out.append(Difference(d.EVENT_VALUE, key, f"order {order.number}: {metric} value "
                                      f"{_money(got.value)}, the ERP's {value}", str(value),
                                      str(_money(got.value)), customer=order.customer))
        if compared and abs(desired_sum - actual_sum) > CENT:
            out.append(Difference(d.REVENUE_MISMATCH, f"order:{order.number}",
                                  f"order {order.number}: Klaviyo's revenue {actual_sum} (Placed - Cancelled - "
                                  f"Refunded), the ERP's net {desired_sum}", str(desired_sum), str(actual_sum),
                                  customer=order.customer))
        out += _extras(order, wanted, by_key, mapping)
    return out


def _extras(order: DesiredOrder, wanted: dict[str, Operation], by_key: dict[str, list[HeldEvent]],
            mapping: Mapping) -> list[Difference]:
    """Events of the order Klaviyo holds under the fleet's key that no rule produces now."""
    tolerated = (mapping.metrics.updated_order, mapping.metrics.ordered_product)  # amendments; lines cancelled
    out = []
    for key, events in by_key.items():
        if key in wanted or events[0].order != order.number or events[0].metric in tolerated:
            continue
        for event in events:
            out.append(Difference(d.EVENT_EXTRA, f"{key}#{event.id}", f"order {order.number}: {event.metric} "
                                  f"{key} is in Klaviyo but no rule produces it", None, {"event": event.id},
                                  customer=order.customer))
    return out


def _same(desired: Any, actual: Any) -> bool:
    if desired in (None, 0, "0", "0.00") and actual in (None, 0, "0", "0.00", ""):
        return True
    if isinstance(desired, int | float | Decimal) or isinstance(actual, int | float | Decimal):
        try:
            return abs(_money(desired) - _money(actual)) <= CENT
        except ArithmeticError:
            return False
    if isinstance(desired, str) and isinstance(actual, str):
        try:
            return datetime.fromisoformat(desired.replace("Z", "+00:00")) == datetime.fromisoformat(
                actual.replace("Z", "+00:00"))
        except ValueError:
            return desired == actual
    return bool(desired == actual)


def compare_aggregates(code: str, desired: dict[str, Any], own: HeldProfile | None,
                       repair: Operation | None) -> list[Difference]:
    """The ERP-truth aggregates (`sync.orders.aggregates.facts_aggregates`) against the profile's properties;
    an absent property equals an empty aggregate."""
    if own is None:
        return []
    wrong = sorted(k for k, v in desired.items() if not _same(v, own.properties.get(k)))
    if not wrong:
        return []
    return [Difference(d.AGGREGATE_MISMATCH, f"customer:{code}", f"profile {own.id}: {', '.join(wrong)} differ",
                       {k: desired[k] for k in wrong}, {k: own.properties.get(k) for k in wrong}, customer=code,
                       repair=(repaired(repair),) if repair else ())]


def compare_stock(desired: dict[str, tuple[int, Operation]], held: dict[str, HeldVariant]) -> list[Difference]:
    """Each variant's `inventory_quantity` against available to sell; a variant Klaviyo lacks is the catalog's
    difference (`compare_catalog`)."""
    out = []
    for external_id, (quantity, op) in sorted(desired.items()):
        variant = held.get(external_id)
        if variant is not None and variant.inventory_quantity != quantity:
            out.append(Difference(d.STOCK_MISMATCH, f"variant:{external_id}",
                                  f"variant {external_id}: inventory {variant.inventory_quantity}, available to "
                                  f"sell {quantity}", quantity, variant.inventory_quantity, repair=(repaired(op),)))
    return out


def compare_catalog(desired_items: dict[str, Operation], desired_variants: dict[str, Operation],
                    held_items: set[str], held_variants: set[str]) -> list[Difference]:
    """Catalog items and variants the ERP has and Klaviyo lacks, repaired by the fleet's upserts."""
    out = []
    for kind, desired, held in (("item", desired_items, held_items), ("variant", desired_variants, held_variants)):
        for external_id, op in sorted(desired.items()):
            if external_id not in held:
                out.append(Difference(d.CATALOG_MISSING, f"catalog-{kind}:{external_id}",
                                      f"catalog {kind} {external_id} is not in Klaviyo", external_id, None,
                                      repair=(repaired(op),)))
    return out
