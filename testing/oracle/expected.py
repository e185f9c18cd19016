"""From a Blue Cherry dump to what Klaviyo must hold, by the rules of docs/rules.md (and nothing else)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from testing.oracle.erp import InvalidRecord, cents, e164, instant, local, normal_email, number, quantity, rows, text
from testing.oracle.rules import DIALECTS, Dialect, TenantRules

# How an event's value is checked (docs/rules.md, "Events"): exactly; only while the order shows no Updated
# Order in Klaviyo; through the order's latest Placed/Updated value; against that latest announced value.
ValueCheck = Literal["exact", "unamended", "latest", "announced"]
SELLABLE_FLAGS = {"y", "yes", "true", "1"}


@dataclass(frozen=True)
class ExpectedProfile:
    owner: str  # "customer:<code>" or "guest:<email>"
    email: str
    external_id: str | None
    phone_number: str | None
    check_phone: bool  # False when the phone is shared by several customers (Klaviyo can hold it once)
    consent: dict[str, bool] | None  # channel -> subscribed; None: the ERP holds no consent (guests)
    aggregates: dict[str, Any]


@dataclass(frozen=True)
class ExpectedEvent:
    metric: str
    unique_id: str
    owner: str
    order: str  # ERP order number
    value: float
    time: datetime
    check: ValueCheck = "exact"


@dataclass(frozen=True)
class Memo:
    number: str
    date: datetime
    value: float


@dataclass(frozen=True)
class PlacedOrder:
    number: str
    order_id: str
    owner: str
    value: float  # current value (a cancelled order: with its ordered quantities)
    cancelled: bool
    memos: tuple[Memo, ...]  # first memo (earliest date, then number) first
    storefront: bool = False  # its storefront sends its Placed Order (and product events), not the fleet


@dataclass(frozen=True)
class Skipped:
    record: str
    reason: str


@dataclass
class ExpectedState:
    rules: TenantRules
    profiles: dict[str, ExpectedProfile] = field(default_factory=dict)  # by owner
    events: dict[tuple[str, str], ExpectedEvent] = field(default_factory=dict)  # (metric, unique_id)
    tolerated_events: dict[tuple[str, str], str] = field(default_factory=dict)  # key -> owner
    tolerated_orders: set[str] = field(default_factory=set)  # numbers/refs of skipped orders: any event
    waiting_orders: set[str] = field(default_factory=set)  # numbers of orders whose events must wait: none
    orders: dict[str, PlacedOrder] = field(default_factory=dict)  # placed in-scope orders by number
    variants: dict[str, int] = field(default_factory=dict)  # variant external_id -> available to sell
    tolerated_identities: set[str] = field(default_factory=set)  # "external_id:.." / "email:.." / "phone:.."
    deleted_identities: dict[str, str] = field(default_factory=dict)  # identity -> erased customer code
    skipped: list[Skipped] = field(default_factory=list)
    waiting: list[Skipped] = field(default_factory=list)  # orders that must have no event yet, and why

    def skip(self, record: str, reason: str) -> None:
        self.skipped.append(Skipped(record, reason))


@dataclass(frozen=True)
class Customer:
    code: str
    email: str
    phone: str | None
    email_optin: bool
    sms_optin: bool


@dataclass(frozen=True)
class Order:
    number: str
    order_id: str
    customer: str
    in_scope: bool
    storefront: bool  # a channel of `storefront_sends_placed`
    ref_missing: bool  # a storefront order without the reference its events go under: they wait
    placed: bool
    cancelled: bool
    confirmed_at: datetime | None
    shopper_email: str | None
    value: Decimal
    announced_value: Decimal  # a cancelled order's value keeps its ordered quantities
    open_lines: dict[str, Decimal]  # line_seq -> row total, lines with open quantity
    all_lines: tuple[str, ...]
    owner: str = ""  # whose profile gets the events: "customer:<code>" or "guest:<email>"


def expected_state(dump: dict[str, Any], rules: TenantRules = TenantRules()) -> ExpectedState:
    dialect = DIALECTS[str(dump.get("dialect") or "default")]
    zone = ZoneInfo(rules.timezone or str(dump.get("timezone") or "UTC"))
    resources: dict[str, list[dict[str, Any]]] = dump.get("resources", {})
    state = ExpectedState(rules)
    reader = _Reader(dialect, rules, zone, state)
    customers = reader.customers(resources.get(dialect.customer, []))
    orders = reader.orders(resources.get(dialect.order, []), customers)
    reader.order_events(orders, resources)
    reader.profiles(customers, orders)
    reader.stock(resources)
    return state


@dataclass
class _Reader:
    d: Dialect
    rules: TenantRules
    zone: ZoneInfo
    state: ExpectedState
    memos_of: dict[str, list[float]] = field(default_factory=dict)  # order number -> its memos' values

    def yes(self, record: dict[str, Any], name: str) -> bool:
        return text(record, name) in self.rules.yes_values

    def when(self, value: str) -> datetime | None:
        """A time of the dump, written the dialect's way (or ISO), as a UTC instant."""
        return instant(value, self.zone, self.d.date_formats)

    def stamp(self, record: dict[str, Any]) -> datetime:
        """A record's last-modified stamp as a local time, for "newest" (unreadable: oldest)."""
        try:
            return local(text(record, self.d.last_mod), self.d.date_formats)
        except InvalidRecord:
            return datetime.min

    def tolerate(self, code: str | None, email: str | None, phone: str | None) -> None:
        for kind, value in (("external_id", code), ("email", email), ("phone", phone)):
            if value:
                self.state.tolerated_identities.add(f"{kind}:{value}")

    # --- customers --------------------------------------------------------------------------------------
    def customers(self, records: list[dict[str, Any]]) -> dict[str, Customer]:
        d, rules, found = self.d, self.rules, {}
        for raw in records:
            code = text(raw, d.customer_code)
            email = normal_email(text(raw, d.customer_email))
            phone = e164(text(raw, d.customer_phone), rules.phone_region)
            status = text(raw, d.customer_status)
            if not code:
                self.state.skip("customer:?", "no customer code")
                self.tolerate(None, email, phone)
            elif code in rules.catch_all_customers:
                continue  # a catch-all account is no profile: its orders go to the shopper
            elif self.yes(raw, d.customer_delete_flag):
                for kind, value in (("external_id", code), ("email", email), ("phone", phone)):
                    if value:
                        self.state.deleted_identities[f"{kind}:{value}"] = code
            elif d.customer_status and status not in rules.customer_active + rules.customer_inactive:
                # (a tenant without a customer status has only active customers: docs/rules.md, "Absent fields")
                self.state.skip(f"customer:{code}", f"unknown status {status!r}")
                self.tolerate(code, email, phone)
            elif email is None:
                self.state.skip(f"customer:{code}", f"no valid email ({text(raw, d.customer_email)!r})")
                self.tolerate(code, email, phone)
            else:
                found[code] = Customer(code, email, phone, self.yes(raw, d.customer_email_optin),
                                       self.yes(raw, d.customer_sms_optin))
        return self.unshared(found)

    def unshared(self, customers: dict[str, Customer]) -> dict[str, Customer]:
        """Klaviyo holds an email once: customers sharing one are skipped (no way to give each a profile)."""
        by_email: dict[str, list[str]] = defaultdict(list)
        for customer in customers.values():
            by_email[customer.email].append(customer.code)
        for email, codes in by_email.items():
            if len(codes) > 1:
                for code in codes:
                    self.state.skip(f"customer:{code}", f"email {email} shared by customers {', '.join(codes)}")
                    self.tolerate(code, email, customers.pop(code).phone)
        return customers

    # --- orders -----------------------------------------------------------------------------------------
    def orders(self, records: list[dict[str, Any]], customers: dict[str, Customer]) -> dict[str, Order]:
        found: dict[str, Order] = {}
        by_email = {customer.email: customer.code for customer in customers.values()}
        for raw in records:
            ord_num = text(raw, self.d.order_number)
            try:
                order = self.order(raw, ord_num)
            except InvalidRecord as problem:
                self.state.skip(f"order:{ord_num or '?'}", str(problem))
                self.state.tolerated_orders |= {ord_num, text(raw, self.d.order_storefront_ref)} - {""}
                continue
            owner = self.owner(order, customers, by_email) if order.in_scope else None
            if owner is not None:
                found[ord_num] = replace(order, owner=owner)
        return found

    def order(self, raw: dict[str, Any], ord_num: str) -> Order:
        d, rules = self.d, self.rules
        if not ord_num:
            raise InvalidRecord("no order number")
        status = text(raw, d.order_status)
        stages = (rules.entered, rules.confirmed, rules.on_hold, rules.cancelled, rules.closed)
        if not any(status in codes for codes in stages):
            raise InvalidRecord(f"unknown status {status!r}")
        confirmed = self.when(text(raw, d.order_confirmed))
        entered = self.when(text(raw, d.order_entered)) if d.order_entered else None
        placed = status in rules.confirmed + rules.closed or (
            status in rules.on_hold + rules.cancelled and confirmed is not None)
        if placed and (confirmed or entered) is None:
            raise InvalidRecord("confirmed without a confirmation or entry date")
        ref = text(raw, d.order_storefront_ref)
        ordered, open_lines, seqs = self.lines(raw)
        extras = -number(raw, d.order_discount)
        extras += number(raw, d.order_tax) if rules.value_includes_tax else 0
        extras += number(raw, d.order_freight) if rules.value_includes_freight else 0
        division, channel = text(raw, d.order_division), text(raw, d.order_channel)
        storefront = channel in rules.storefront_sends_placed
        return Order(
            number=ord_num, order_id=ref if rules.use_storefront_ref and ref else ord_num,
            customer=text(raw, d.order_customer),
            in_scope=text(raw, d.order_type) in rules.order_types
            and (not rules.divisions or division in rules.divisions)
            and channel in rules.sales_channels,
            storefront=storefront, ref_missing=storefront and rules.use_storefront_ref and not ref,
            placed=placed, cancelled=status in rules.cancelled, confirmed_at=confirmed or entered,
            shopper_email=self.shopper_email(raw), value=sum(open_lines.values(), Decimal(0)) + extras,
            announced_value=ordered + extras, open_lines=open_lines, all_lines=seqs,
        )

    def lines(self, raw: dict[str, Any]) -> tuple[Decimal, dict[str, Decimal], tuple[str, ...]]:
        d = self.d
        ordered, open_lines, seqs = Decimal(0), {}, []
        for line in rows(raw, d.order_lines):
            seq, price = text(line, d.line_seq), number(line, d.line_price)
            qty, cancelled = quantity(line, d.order_line_qty), quantity(line, d.order_line_cancel_qty)
            if not seq or seq in seqs:
                raise InvalidRecord(f"missing or repeated line number {seq!r}")
            if cancelled > qty:
                raise InvalidRecord(f"line {seq}: cancelled quantity {cancelled} above ordered {qty}")
            seqs.append(seq)
            ordered += qty * price
            if qty > cancelled:
                open_lines[seq] = (qty - cancelled) * price
        return ordered, open_lines, tuple(seqs)

    def shopper_email(self, raw: dict[str, Any]) -> str | None:
        d = self.d
        if d.address_prefixes:  # flat on the order: <bill-to prefix>email, <ship-to prefix>email
            bill, ship = d.address_prefixes
            addresses = {d.address_bill_to: text(raw, bill + d.address_email),
                         d.address_ship_to: text(raw, ship + d.address_email)}
        else:
            addresses = {text(row, d.address_type): text(row, d.address_email)
                         for row in rows(raw, d.order_addresses)}
        return normal_email(addresses.get(d.address_bill_to) or addresses.get(d.address_ship_to) or "")

    def owner(self, order: Order, customers: dict[str, Customer], by_email: dict[str, str]) -> str | None:
        """Whose profile gets the order's events; None (and a skip) when no one's may."""
        if order.customer in self.rules.catch_all_customers:
            if order.shopper_email is None:
                self.state.skip(f"order:{order.number}", "guest order without a valid shopper email")
                self.state.tolerated_orders |= {order.number, order.order_id}
                return None
            if not order.placed:
                self.tolerate(None, order.shopper_email, None)
            holder = by_email.get(order.shopper_email)
            return f"customer:{holder}" if holder else f"guest:{order.shopper_email}"
        if order.customer in customers:
            return f"customer:{order.customer}"
        if f"external_id:{order.customer}" in self.state.deleted_identities:
            return None  # an erased customer: nothing of theirs may be in Klaviyo
        self.state.skip(f"order:{order.number}", f"customer {order.customer!r} is skipped or not in the dump")
        self.state.tolerated_orders |= {order.number, order.order_id}
        return None

    # --- events -----------------------------------------------------------------------------------------
    def order_events(self, orders: dict[str, Order], resources: dict[str, list[dict[str, Any]]]) -> None:
        rules = self.rules
        dispatched = self.dispatched(resources, orders)
        memos = self.memos(resources.get(self.d.creditmemo, []), orders)
        self.memos_of = {number: [m.value for m in found] for number, found in memos.items()}
        for order in orders.values():
            if not order.placed or order.confirmed_at is None:
                continue  # never an event for an order never confirmed
            if order.ref_missing:  # nothing under the ERP number: it would match no Placed Order in Klaviyo
                self.state.waiting.append(Skipped(f"order:{order.number}", "storefront_ref_missing: a "
                                                  "storefront order without its reference; its events wait"))
                self.state.waiting_orders.add(order.number)
                continue
            placed_at = order.confirmed_at
            announced = order.announced_value if order.cancelled else order.value
            add = self.adder(order)
            if order.storefront:  # the storefront's own Placed Order and product events: not ours to judge
                self.state.tolerated_events[(rules.placed_order, order.order_id)] = order.owner
            else:
                add(rules.placed_order, order.order_id, announced, placed_at, "latest")
            for seq in order.all_lines:
                if seq in order.open_lines and not order.cancelled and not order.storefront:
                    add(rules.ordered_product, f"{order.number}:{seq}", order.open_lines[seq], placed_at, "unamended")
                else:  # a line cancelled after placement may have had its Ordered Product (history decides);
                    # a storefront order's product events are the storefront's
                    self.state.tolerated_events[(rules.ordered_product, f"{order.number}:{seq}")] = order.owner
            for document, (shipped, when) in sorted(dispatched.get(order.number, {}).items()):
                add(rules.fulfilled_order, f"{order.number}:fulfilled:{document}", shipped, when, "exact")
            if order.cancelled:
                add(rules.cancelled_order, order.order_id, order.announced_value, placed_at, "announced")
            own = tuple(sorted(memos.get(order.number, []), key=lambda memo: (memo.date, memo.number)))
            for index, memo in enumerate(own):
                unique_id = order.order_id if index == 0 else f"{order.number}:refund:{memo.number}"
                add(rules.refunded_order, unique_id, Decimal(str(memo.value)), memo.date, "exact")
            self.state.orders[order.number] = PlacedOrder(order.number, order.order_id, order.owner, cents(announced),
                                                          order.cancelled, own, order.storefront)

    def adder(self, order: Order) -> Callable[[str, str, Decimal, datetime, ValueCheck], None]:
        def add(metric: str, unique_id: str, value: Decimal, when: datetime, check: ValueCheck) -> None:
            self.state.events[(metric, unique_id)] = ExpectedEvent(
                metric, unique_id, order.owner, order.number, cents(value), when, check)
        return add

    def dispatched(self, resources: dict[str, list[dict[str, Any]]], orders: dict[str, Order]
                   ) -> dict[str, dict[str, tuple[Decimal, datetime]]]:
        """order number -> dispatch document -> (shipped merchandise, time)."""
        d = self.d
        if self.rules.dispatch_document == "invoice":
            spec = (d.invoice, d.invoice_number, d.invoice_order, d.invoice_lines, d.invoice_line_qty, d.invoice_date)
        else:
            spec = (d.pick, d.pick_number, d.pick_order, d.pick_lines, d.pick_line_qty, d.pick_ship_date)
        resource, number_field, order_field, lines_field, qty_field, date_field = spec
        found: dict[str, dict[str, tuple[Decimal, datetime]]] = defaultdict(dict)
        for raw in resources.get(resource, []):
            doc, order = text(raw, number_field), text(raw, order_field)
            if order not in orders:
                continue
            if resource == d.pick and not self.shipped(raw):
                continue  # only a shipped pick ticket is a dispatch
            try:
                when = self.when(text(raw, date_field) or text(raw, d.last_mod))
                value = sum((quantity(line, qty_field) * number(line, d.line_price)
                             for line in rows(raw, lines_field)), Decimal(0))
                if when is None or not doc:
                    raise InvalidRecord("no document number or date")
            except InvalidRecord as problem:
                self.state.skip(f"{resource}:{doc or '?'}", str(problem))
                self.state.tolerated_events[(self.rules.fulfilled_order, f"{order}:fulfilled:{doc}")] = ""
                continue
            found[order][doc] = (value, when)
        return found

    def shipped(self, pick: dict[str, Any]) -> bool:
        if self.d.pick_shipped_by_date:
            return bool(text(pick, self.d.pick_ship_date))
        return text(pick, self.d.pick_status) == self.rules.pick_shipped_value

    def memos(self, records: list[dict[str, Any]], orders: dict[str, Order]) -> dict[str, list[Memo]]:
        d, found = self.d, defaultdict(list)
        for raw in records:
            doc, order = text(raw, d.memo_number), text(raw, d.memo_order)
            if order not in orders:
                continue
            try:
                # no memo date in the tenant: its last_mod (docs/rules.md, "Absent fields")
                when = self.when(text(raw, d.memo_date) if d.memo_date else text(raw, d.last_mod))
                if when is None or not doc:
                    raise InvalidRecord("no memo number or date")
                found[order].append(Memo(doc, when, cents(abs(number(raw, d.memo_total)))))
            except InvalidRecord as problem:
                self.state.skip(f"creditmemo:{doc or '?'}", str(problem))
                self.state.tolerated_orders.add(order)  # which memo holds the order-level id is now unknown
        return found

    # --- profiles ---------------------------------------------------------------------------------------
    def profiles(self, customers: dict[str, Customer], orders: dict[str, Order]) -> None:
        phones = defaultdict(list)
        for customer in customers.values():
            if customer.phone:
                phones[customer.phone].append(customer.code)
        for phone, codes in phones.items():
            if len(codes) > 1:  # Klaviyo holds a phone once: which customer keeps it is not the rules' call
                self.state.tolerated_identities.add(f"phone:{phone}")
        by_owner: dict[str, list[Order]] = defaultdict(list)
        for order in orders.values():
            by_owner[order.owner].append(order)
        for customer in customers.values():
            owner = f"customer:{customer.code}"
            shared = customer.phone is not None and len(phones[customer.phone]) > 1
            self.state.profiles[owner] = ExpectedProfile(
                owner, customer.email, customer.code, customer.phone, not shared,
                {"email": customer.email_optin, "sms": customer.sms_optin and customer.phone is not None},
                self.aggregates(by_owner.get(owner, [])),
            )
        for owner, own in by_owner.items():
            if owner.startswith("guest:") and any(order.placed for order in own):
                email = owner.removeprefix("guest:")
                self.state.profiles[owner] = ExpectedProfile(owner, email, None, None, True, None, self.aggregates(own))
                self.state.deleted_identities.pop(f"email:{email}", None)

    def aggregates(self, orders: list[Order]) -> dict[str, Any]:
        counted = [o for o in orders if o.placed and not o.cancelled and o.confirmed_at is not None]
        gross = sum((o.value for o in counted), Decimal(0))
        refunds = sum((Decimal(str(value)) for o in counted for value in self.memos_of.get(o.number, [])),
                      Decimal(0))
        dates = [o.confirmed_at for o in counted if o.confirmed_at is not None]
        prefix = self.rules.aggregate_prefix
        return {
            f"{prefix}order_count": len(counted),
            f"{prefix}gross_revenue": cents(gross),
            f"{prefix}refunds": cents(refunds),
            f"{prefix}net_lifetime_value": cents(gross - refunds),
            f"{prefix}first_order_date": min(dates).isoformat() if dates else None,
            f"{prefix}last_order_date": max(dates).isoformat() if dates else None,
        }

    # --- stock ------------------------------------------------------------------------------------------
    def stock(self, resources: dict[str, list[dict[str, Any]]]) -> None:
        d, rules = self.d, self.rules
        sellable = set(rules.sellable_warehouses) or {
            text(loc, d.location_code) for loc in resources.get(d.location, [])
            if text(loc, d.location_sellable).lower() in SELLABLE_FLAGS}
        if not sellable:
            self.state.skip("stock", "no sellable warehouse (a configuration error): no figure expected")
            return
        figures, unknown = self.figures(resources.get(d.inventory, []), sellable)
        for style in resources.get(d.style, []):
            if text(style, d.style_status) in rules.discontinued_values:
                continue  # retired: its variants are unpublished, their figures no longer kept
            for sku in rows(style, d.style_skus):
                key = self.sku_key(style, sku)
                if text(sku, d.sku_status) in rules.discontinued_values:
                    continue
                try:
                    external_id = self.variant_id(style, sku)
                except (KeyError, IndexError, ValueError) as problem:
                    self.state.skip(f"sku:{'-'.join(key)}", f"variant id template: {problem!r}")
                    continue
                if key in unknown:
                    self.state.skip(f"variant:{external_id}", "an inventory row is unreadable")
                    continue
                total = figures.get(key, Decimal(0))
                self.state.variants[external_id] = max(0, math.floor(total))

    def figures(self, records: list[dict[str, Any]], sellable: set[str]
                ) -> tuple[dict[tuple[str, ...], Decimal], set[tuple[str, ...]]]:
        """Per SKU key: the sum over sellable warehouses (newest row per warehouse), and unreadable SKUs."""
        d = self.d
        newest: dict[tuple[tuple[str, ...], str], dict[str, Any]] = {}
        for raw in records:
            warehouse = text(raw, d.inventory_warehouse)
            if warehouse in sellable:
                key = tuple(text(raw, name) for name in (d.inventory_style, d.inventory_color, d.inventory_label,
                                                          d.inventory_dimension, d.inventory_size))
                previous = newest.get((key, warehouse))
                if previous is None or self.stamp(raw) >= self.stamp(previous):
                    newest[(key, warehouse)] = raw
        totals: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
        unknown = set()
        for (key, _), raw in newest.items():
            try:
                totals[key] += self.available(raw)
            except InvalidRecord as problem:
                self.state.skip(f"inventory:{'-'.join(key)}", str(problem))
                unknown.add(key)
        return totals, unknown

    def available(self, raw: dict[str, Any]) -> Decimal:
        d, rules = self.d, self.rules
        if rules.stock_formula == "direct_ats":
            if not rules.ats_field:
                raise InvalidRecord("stock.formula direct_ats without fields.inventory.ats")
            return number(raw, rules.ats_field)
        if raw.get(d.inventory_available) in (None, ""):
            available = number(raw, d.inventory_on_hand) - number(raw, d.inventory_picked)
        else:
            available = number(raw, d.inventory_available)
        return available - number(raw, d.inventory_open)

    def sku_key(self, style: dict[str, Any], sku: dict[str, Any]) -> tuple[str, ...]:
        d = self.d
        return (text(style, d.style_code), *(text(sku, name) for name in (
            d.sku_color, d.sku_label, d.sku_dimension, d.sku_size)))

    def variant_id(self, style: dict[str, Any], sku: dict[str, Any]) -> str:
        d = self.d
        names = {
            "style": d.style_code, "style_name": d.style_name, "style_desc": d.style_description,
            "brand": d.style_brand, "category": d.style_category, "gender": d.style_gender,
            "division": d.style_division, "season": d.style_season,
        }
        context = {name: text(style, field_name) for name, field_name in names.items()}
        sku_names = {"color_code": d.sku_color, "color_name": d.sku_color_name, "lbl_code": d.sku_label,
                     "dimension": d.sku_dimension, "size_desc": d.sku_size, "upc": d.sku_upc, "ean": d.sku_ean}
        context |= {name: text(sku, field_name) for name, field_name in sku_names.items()}
        context["sku"] = context["upc"]
        raw = {**style, **sku}
        return self.rules.variant_external_id.format_map({**context, "raw": raw})
