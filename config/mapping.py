"""Tenant mapping: which Blue Cherry resources hold what, every field name read, status codes,
Klaviyo metric names, field policies, high-demand SKUs and exception owners.

The defaults below match the sandbox (and are what `mapping.example.toml` lists). A tenant whose API
differs overrides keys in its own TOML file (``BCSYNC_MAPPING_FILE``). Every model forbids unknown keys,
so a typo is refused at start with the file, the key and what was expected.

How a tenant's habits are said (docs/configuration.md, "Tenant dialects"):
- a field the tenant does not have is named ``""`` (absent): it reads as empty, or as its documented fallback
  (`FALLBACKS`); a field nothing can stand in for (`REQUIRED_FIELDS`) cannot be absent;
- dates: ISO 8601 always, then `resources.<r>.date_formats`, then `tenant.date_formats` (strptime formats);
- `normalise` in any ``[fields.*]`` table: per field key, normalisers applied to the raw value before it is
  fingerprinted or read (`Normaliser`);
- a lifecycle fact as a `Predicate` on one field (`fields.pick.shipped_when`);
- addresses as child rows or flat on the record (`AddressFields.layout`);
- `resources.<r>.not_found` (a 404 as an empty page) and `resources.<r>.envelope` (where the records are).
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from fnmatch import fnmatchcase
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from config.exception_types import Owner
from config.settings import get_settings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A date the sample below is written and read back with: every field distinct and unambiguous (day 28 > 12,
# hour 13 > 12), so a format that drops or confuses a part is caught when the mapping is loaded.
_FORMAT_SAMPLE = datetime(2031, 12, 28, 13, 45, 56)
# Blue Cherry's report timestamps (CSV drops, and what the stock and catalog parsers always took besides ISO)
US_STAMP_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%m/%d/%Y")


def key_error(key: str, detail: str) -> PydanticCustomError:
    """A problem with one key below the model being validated (`key` relative to it, dotted)."""
    return PydanticCustomError("mapping_key", "{detail}", {"key": key, "detail": detail})


def date_format_problem(fmt: str) -> str | None:
    """Why a strptime format cannot read the tenant's dates, or None: it must write and read back a whole date
    (day, month, year) and any time parts it names, and must not be ISO's own (ISO is always accepted)."""
    if not fmt.strip():
        return "an empty format"
    try:
        text = _FORMAT_SAMPLE.strftime(fmt)
        back = datetime.strptime(text, fmt)
    except ValueError as exc:
        return f"{fmt!r} is not a strptime format ({exc})"
    if back.date() != _FORMAT_SAMPLE.date():
        return f"{fmt!r} does not hold a whole date (day, month and year): {_FORMAT_SAMPLE} reads back as {back}"
    if back.time() not in (_FORMAT_SAMPLE.time(), _FORMAT_SAMPLE.replace(second=0).time(),
                           _FORMAT_SAMPLE.replace(minute=0, second=0).time(), datetime.min.time()):
        return f"{fmt!r} reads the time of {text!r} back as {back.time()} (12-hour %I without %p?)"
    return None


def _check_date_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    for index, fmt in enumerate(formats):
        problem = date_format_problem(fmt)
        if problem:
            raise key_error(str(index), problem)
    return formats


class TenantMapping(Strict):
    timezone: str = "America/New_York"
    default_phone_region: str = "US"
    source_system: str = "Blue Cherry"
    currency: str = "USD"
    date_formats: tuple[str, ...] = Field(
        (),
        description="strptime formats of the tenant's dates and date-times (e.g. [\"%m/%d/%Y %H:%M:%S\", "
        "\"%m/%d/%Y\"]), tried in order after ISO 8601 (always accepted) and after the resource's own "
        "date_formats, by every parser of every resource, last_mod included.",
    )

    _date_formats = field_validator("date_formats")(_check_date_formats)


class ResourceMapping(Strict):
    """Where a resource lives and how it is polled."""

    path: str
    key: str = "pkey"
    last_mod: str = "last_mod"
    sequence_field: str | None = Field(
        None,
        description="A field holding the ERP's own monotonic change counter (e.g. rowversion): change versions "
        "order by it instead of by last_mod. Unset: last_mod orders them. Once set, keep it set.",
    )
    include_children: bool = True
    poll_seconds: float = 60.0
    page_size: int = Field(200, ge=1, le=200)
    date_formats: tuple[str, ...] = Field(
        (),
        description="strptime formats of this resource's dates and date-times (its own fields, child rows and "
        "last_mod), tried in order after ISO 8601 (always accepted) and before tenant.date_formats.",
    )
    not_found: Literal["error", "empty"] = Field(
        "error",
        description="What a 404 answer to a read of this resource means: error (a read error, the poller "
        "retries next cycle) or empty (the tenant answers 404 while the resource holds no records: an empty page).",
    )
    envelope: str = Field(
        "",
        description="Dotted path of the record list in a response body, e.g. result.items; empty: data.header, "
        "else data (bcapi's two shapes).",
    )

    _date_formats = field_validator("date_formats")(_check_date_formats)


Normaliser = Literal["trim", "upper", "lower", "strip_leading_zeros"]


class FieldTable(Strict):
    """A ``[fields.*]`` table: ERP field names by logical key ("" = the tenant has no such field), plus the
    normalisers of its fields. `SETTINGS` lists the keys that hold values or choices, not ERP field names."""

    SETTINGS: ClassVar[frozenset[str]] = frozenset()

    normalise: dict[str, tuple[Normaliser, ...]] = Field(
        default_factory=dict,
        description="Normalisers per field key of this table, applied in order to the raw value before it is "
        "fingerprinted or read, so cosmetic differences are no change: trim, upper, lower, strip_leading_zeros "
        "(e.g. { code = [\"trim\", \"strip_leading_zeros\"] }).",
    )

    @cached_property
    def normalising(self) -> bool:
        """Does this table or a table in it have normalisers (computed once: tables are frozen)."""
        return bool(self.normalise) or any(
            isinstance(sub := getattr(self, name), FieldTable) and sub.normalising for name in type(self).model_fields)

    @classmethod
    def field_keys(cls) -> tuple[str, ...]:
        """The keys of this table that name one ERP field (what `normalise` may name)."""
        return tuple(name for name, info in cls.model_fields.items()
                     if info.annotation in (str, str | None) and name not in cls.SETTINGS | {"rows"})

    @model_validator(mode="after")
    def _normalise_names_fields(self) -> FieldTable:
        keys = self.field_keys()
        for name in self.normalise:
            if name not in keys:
                raise key_error(f"normalise.{name}", f"not a field key of this table (its field keys: "
                                f"{', '.join(keys)})")
        return self


class Predicate(Strict):
    """A fact read from one field: exactly one of `equals`, `in`, `present` (non-empty), `absent` (empty).
    The value is compared stripped (after the field's normalisers), case-sensitively."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    field: str = Field(description="The ERP field tested.")
    equals: str | None = Field(None, description="True when the field's value is this.")
    in_: tuple[str, ...] | None = Field(None, alias="in", description="True when the field's value is one of these.")
    present: bool | None = Field(None, description="true: true when the field has a non-empty value.")
    absent: bool | None = Field(None, description="true: true when the field is missing or empty.")

    @model_validator(mode="after")
    def _one_test(self) -> Predicate:
        if not self.field.strip():
            raise key_error("field", "a predicate needs the field it tests")
        given = [name for name, value in (("equals", self.equals), ("in", self.in_), ("present", self.present),
                                          ("absent", self.absent)) if value is not None]
        if len(given) != 1:
            raise key_error("", "give exactly one of equals, in, present = true, absent = true "
                            f"(got {', '.join(given) or 'none'})")
        if self.present is False or self.absent is False:
            other = "absent" if given[0] == "present" else "present"
            raise key_error(given[0], f"{given[0]} = false is no test: write {other} = true (or {given[0]} = true)")
        return self

    @property
    def text(self) -> str:
        """The predicate as a reader says it: "ship_date present", "pick_status = 'S'"."""
        if self.equals is not None:
            return f"{self.field} = {self.equals!r}"
        if self.in_ is not None:
            return f"{self.field} in {list(self.in_)}"
        return f"{self.field} {'present' if self.present else 'absent'}"


class AddressFields(FieldTable):
    SETTINGS: ClassVar[frozenset[str]] = frozenset(
        {"bill_to", "ship_to", "layout", "bill_to_prefix", "ship_to_prefix"})

    layout: Literal["rows", "flat"] = Field(
        "rows",
        description="rows: one child row per address, told apart by addr_type; flat: the fields are on the "
        "record itself, each named <prefix><field name> (bill_to_prefix + city = bill_city).",
    )
    rows: str  # child collection name, e.g. "custaddress"
    addr_type: str = "addr_type"
    bill_to: str = "BT"
    ship_to: str = "ST"
    bill_to_prefix: str = Field("bill_", description="layout flat: prefix of the bill-to fields on the record "
                                "(may be empty: the record's own addr1, city... are the bill-to).")
    ship_to_prefix: str = Field("ship_", description="layout flat: prefix of the ship-to fields on the record.")
    name: str = "name"
    addr1: str = "addr1"
    addr2: str = "addr2"
    city: str = "city"
    state: str = "state"
    zipcode: str = "zipcode"
    country: str = "country"
    email: str = "email"
    phone: str = "phone"


class CustomerFields(FieldTable):
    SETTINGS: ClassVar[frozenset[str]] = frozenset({"groups", "yes_values"})

    code: str = "customer"
    name: str = "name"
    first_name: str = "first_name"
    last_name: str = "last_name"
    email: str = "email"
    phone: str = "phone"
    division: str = "division"
    groups: tuple[str, ...] = ("cust_group", "cust_type")
    created: str = "created"
    status: str = "status"
    email_optin: str = "email_optin"
    email_optin_date: str = "email_optin_date"
    email_optin_source: str = "email_optin_source"
    sms_optin: str = "sms_optin"
    sms_optin_date: str = "sms_optin_date"
    sms_optin_source: str = "sms_optin_source"
    delete_flag: str = "delete_flag"
    yes_values: tuple[str, ...] = ("Y", "y", "1", "true", "TRUE")
    addresses: AddressFields = AddressFields(rows="custaddress")


class LineFields(FieldTable):
    rows: str
    line_seq: str = "line_seq"
    style: str = "style"
    color_code: str = "color_code"
    lbl_code: str = "lbl_code"
    dimension: str = "dimension"
    size_desc: str = "size_desc"
    upc: str = "upc"
    price: str = "price"
    qty: str = "ord_qty"
    cancel_qty: str = "cancel_qty"
    description: str = "style_name"


class OrderFields(FieldTable):
    number: str = "ord_num"
    customer: str = "customer"
    ord_type: str = "ord_type"
    division: str = "division"
    sales_channel: str = "sales_channel"
    status: str = "ord_status"
    entered: str = "ord_date"
    confirmed: str = "confirm_date"
    currency: str = "curr_code"
    discount_code: str = "disc_code"
    discount: str = "disc_amt"
    tax: str = "tax_amt"
    freight: str = "frgt_amt"
    season: str = "season"
    warehouse: str = "location"
    storefront_ref: str = "web_ref"
    addresses: AddressFields = AddressFields(rows="orderaddress")
    lines: LineFields = LineFields(rows="orderdetail")


class PickFields(FieldTable):
    SETTINGS: ClassVar[frozenset[str]] = frozenset({"shipped_value", "status_values"})

    number: str = "pick_num"
    order: str = "ord_num"
    status: str = "pick_status"
    shipped_value: str = "S"
    status_values: tuple[str, ...] = Field(
        (),
        description="Every pick status the tenant uses (shipped or not), e.g. [\"O\", \"S\", \"X\"]: a pick ticket "
        "with another status is an unknown_status exception and is left out until the mapping names it. Empty: "
        "not checked (any status but the shipped one means not shipped).",
    )
    shipped_when: Predicate | None = Field(
        None,
        description="When a pick ticket is shipped, as a predicate on one field, e.g. { field = \"ship_date\", "
        "present = true } or { field = \"pick_status\", in = [\"S\", \"C\"] }; unset: status = shipped_value.",
    )
    ship_date: str = "ship_date"
    carrier: str = "shipper"
    tracking: str = "tracking_num"
    invoice: str = "inv_num"
    lines: LineFields = LineFields(rows="pickdetail", qty="total_qty", cancel_qty="bk_qty")

    @model_validator(mode="after")
    def _shipped_status_listed(self) -> PickFields:
        if self.status_values and self.shipped_when is None and self.shipped_value not in self.status_values:
            raise key_error("status_values", "lists every pick status the tenant uses: it must name "
                            f"shipped_value {self.shipped_value!r} too")
        return self


class InvoiceFields(FieldTable):
    number: str = "inv_num"
    order: str = "ord_num"
    pick: str = "pick_num"
    date: str = "inv_date"
    carrier: str = "shipper"
    tracking: str = "tracking_num"
    merchandise: str = "merch_amt"
    discount: str = "disc_amt"
    tax: str = "tax_amt"
    freight: str = "frgt_amt"
    total: str = "total_amt"
    lines: LineFields = LineFields(rows="invoicedetail", qty="inv_qty")


class CreditMemoFields(FieldTable):
    number: str = "memo_num"
    order: str = "ord_num"
    invoice: str = "inv_num"
    date: str = "memo_date"
    reason_code: str = "reason_code"
    reason: str = "reason_desc"
    restock: str = "restock"
    total: str = "total_amt"
    tax: str = "tax_amt"
    freight: str = "frgt_amt"
    lines: LineFields = LineFields(rows="memodetail", qty="ret_qty")


class StyleFields(FieldTable):
    SETTINGS: ClassVar[frozenset[str]] = frozenset({"discontinued_values", "status_values"})

    style: str = "style"
    name: str = "style_name"
    description: str = "style_desc"
    brand: str = "group_code1"
    category: str = "group_code2"
    gender: str = "group_code3"
    division: str = "division"
    season: str = "season"
    price: str = "retail_price"
    status: str = "status"
    discontinued_values: tuple[str, ...] = ("D",)
    status_values: tuple[str, ...] = Field(
        (),
        description="Every style and SKU status the tenant uses besides discontinued_values, e.g. [\"A\"]: a style "
        "with another status (its own or a SKU's) is an unknown_status exception and is left out of the catalog "
        "until the mapping names it. Empty: not checked (any status not discontinued is active).",
    )
    skus: str = "stylecolorsizes"  # child collection, under "rows-i"
    sku_upc: str = "upc"
    sku_ean: str = "ean"
    sku_color: str = "color_code"
    sku_color_name: str = "color_name"
    sku_label: str = "lbl_code"
    sku_dimension: str = "dimension"
    sku_size: str = "size_desc"
    sku_status: str = "status"
    sku_price: str = "retail_price"


class InventoryFields(FieldTable):
    style: str = "style"
    color_code: str = "color_code"
    lbl_code: str = "lbl_code"
    dimension: str = "dimension"
    size_desc: str = "size_desc"
    upc: str = "upc"
    warehouse: str = "location"
    on_hand: str = "qty_oh"
    picked: str = "qty_pick"
    available_on_hand: str = "qty_avail"
    open_orders: str = "qty_open"
    ats: str | None = None  # a direct available-to-sell field, when the tenant has one


class LocationFields(FieldTable):
    code: str = "location"
    name: str = "loc_name"
    sellable: str = "sellable"


class Resources(Strict):
    customer: ResourceMapping = ResourceMapping(path="customer", poll_seconds=10)
    order: ResourceMapping = ResourceMapping(path="order", poll_seconds=30)
    pick: ResourceMapping = ResourceMapping(path="pick", poll_seconds=60)
    invoice: ResourceMapping = ResourceMapping(path="invoice", poll_seconds=60)
    creditmemo: ResourceMapping = ResourceMapping(path="creditmemo", poll_seconds=120)
    style: ResourceMapping = ResourceMapping(path="style", poll_seconds=600, date_formats=US_STAMP_FORMATS)
    inventory: ResourceMapping = ResourceMapping(path="inventory", poll_seconds=10, date_formats=US_STAMP_FORMATS)
    location: ResourceMapping = ResourceMapping(path="Location", poll_seconds=3600, include_children=False)


class Fields(Strict):
    customer: CustomerFields = CustomerFields()
    order: OrderFields = OrderFields()
    pick: PickFields = PickFields()
    invoice: InvoiceFields = InvoiceFields()
    creditmemo: CreditMemoFields = CreditMemoFields()
    style: StyleFields = StyleFields()
    inventory: InventoryFields = InventoryFields()
    location: LocationFields = LocationFields()


class CustomerStatuses(Strict):
    active: tuple[str, ...] = ("A",)
    inactive: tuple[str, ...] = ("I",)


class OrderLifecycle(Strict):
    """Which ERP order status codes mean what. Unknown codes are an exception, never a guess."""

    entered: tuple[str, ...] = ("E",)
    confirmed: tuple[str, ...] = ("O", "P")  # open (confirmed), partly shipped
    on_hold: tuple[str, ...] = ("H",)
    cancelled: tuple[str, ...] = ("X",)
    closed: tuple[str, ...] = ("C",)
    dispatch_document: Literal["pick", "invoice"] = "pick"
    order_types: tuple[str, ...] = ("WEB", "RTL")  # included; wholesale ("WHL") excluded by default
    divisions: tuple[str, ...] = ()  # empty = all
    sales_channels: tuple[str, ...] = ("WEB", "POS")
    catch_all_customers: tuple[str, ...] = ("WEBGUEST",)
    use_storefront_ref: bool = False
    storefront_sends_placed: tuple[str, ...] = ()  # channels whose storefront already sends Placed Order
    value_includes_tax: bool = True
    value_includes_freight: bool = True
    bulk_threshold: int = 500  # more changed orders in one cycle than this -> batch lane, bulk events


class Metrics(Strict):
    placed_order: str = "Placed Order"
    ordered_product: str = "Ordered Product"
    updated_order: str = "Updated Order"
    fulfilled_order: str = "Fulfilled Order"
    cancelled_order: str = "Cancelled Order"
    refunded_order: str = "Refunded Order"


class FieldPolicy(Strict):
    """Which profile fields trigger an immediate (fast lane) update; the rest go in the daily batch."""

    immediate: tuple[str, ...] = ("email", "phone", "first_name", "last_name", "email_optin", "sms_optin")
    daily_batch_hour: int = Field(3, ge=0, le=23)


class Consent(Strict):
    email_list_id: str | None = None
    sms_list_id: str | None = None
    custom_source: str = "Blue Cherry ERP"
    historical_import: bool = False


class Catalog(Strict):
    item_grouping: Literal["style", "style_color"] = "style_color"
    item_external_id: str = "{style}-{color_code}"
    variant_external_id: str = "{style}-{color_code}-{lbl_code}-{dimension}-{size_desc}"
    title: str = "{style_name} - {color_name}"
    variant_title: str = "{style_name} - {color_name} - {size_desc}"
    description: str = "{style_desc}"
    url: str = "https://shop.example.com/products/{style}-{color_code}"
    image_url: str = "https://shop.example.com/images/{style}-{color_code}.jpg"
    inventory_policy: Literal[0, 1, 2] = 1
    discontinued: Literal["unpublish", "delete"] = "unpublish"


class Stock(Strict):
    sellable_warehouses: tuple[str, ...] = ()  # empty = every location flagged sellable
    formula: Literal["avail_minus_open", "direct_ats"] = "avail_minus_open"
    high_demand_skus: tuple[str, ...] = ()  # exact SKU keys or UPCs, or fnmatch patterns
    high_demand_window_hours: int = 24
    high_demand_units: int = 20
    debounce_seconds: float = 30.0


class Profiles(Strict):
    aggregate_prefix: str = "erp_"


class ExceptionOwners(Strict):
    """The owner team of each exception type: one key per type of config.exception_types (a test keeps them equal),
    its default the registry's owner."""

    invalid_record: Owner = "operations"
    customer_mismatch: Owner = "operations"
    unusable_phone: Owner = "operations"
    profile_missing: Owner = "operations"
    klaviyo_partial_failure: Owner = "operations"
    consent_conflict: Owner = "ecommerce"
    delivery_failed: Owner = "operations"
    endpoint_parked: Owner = "operations"
    unknown_status: Owner = "operations"
    revenue_mismatch: Owner = "finance"
    catalog_error: Owner = "ecommerce"
    storefront_ref_missing: Owner = "ecommerce"
    refund_ids_unreadable: Owner = "operations"
    dead_letter_expiring: Owner = "operations"
    dead_letter_expired: Owner = "operations"
    consent_lookup_refused: Owner = "operations"
    consent_unconfirmed: Owner = "operations"
    beat_stale: Owner = "operations"
    buffer_stale: Owner = "operations"
    stock_incomplete: Owner = "operations"
    unparseable_date: Owner = "operations"
    variant_id_mismatch: Owner = "operations"
    recon_profile_missing: Owner = "operations"
    recon_profile_extra: Owner = "operations"
    recon_profile_split: Owner = "operations"
    recon_profile_merged: Owner = "operations"
    recon_profile_field: Owner = "operations"
    recon_consent_mismatch: Owner = "operations"
    recon_consent_klaviyo_side: Owner = "ecommerce"
    recon_event_missing: Owner = "operations"
    recon_event_extra: Owner = "operations"
    recon_event_value: Owner = "operations"
    recon_aggregate_mismatch: Owner = "operations"
    recon_stock_mismatch: Owner = "operations"
    recon_catalog_missing: Owner = "ecommerce"
    watermark_stale: Owner = "operations"
    poller_read_stale: Owner = "operations"
    lane_lagging: Owner = "operations"
    delayed_overdue: Owner = "operations"
    klaviyo_throttled: Owner = "operations"
    budget_exhausted: Owner = "operations"
    attribution_mismatch: Owner = "operations"
    attribution_event_missing: Owner = "operations"
    default: Owner = "operations"

    def owner_of(self, exception_type: str) -> Owner:
        value = getattr(self, exception_type, None)
        return value if isinstance(value, str) else self.default  # type: ignore[return-value]


class Mapping(Strict):
    tenant: TenantMapping = TenantMapping()
    resources: Resources = Resources()
    fields: Fields = Fields()
    customer_status: CustomerStatuses = CustomerStatuses()
    lifecycle: OrderLifecycle = OrderLifecycle()
    metrics: Metrics = Metrics()
    field_policy: FieldPolicy = FieldPolicy()
    consent: Consent = Consent()
    catalog: Catalog = Catalog()
    stock: Stock = Stock()
    profiles: Profiles = Profiles()
    owners: ExceptionOwners = ExceptionOwners()

    @model_validator(mode="after")
    def _coherent(self) -> Mapping:
        problems = tenant_dialect_problems(self)
        if problems:
            raise PydanticCustomError("mapping_keys", "{detail}", {
                "problems": problems, "detail": "; ".join(f"{key}: {detail}" for key, detail in problems)})
        return self

    def date_formats(self, resource: str) -> tuple[str, ...]:
        """The strptime formats tried (after ISO 8601) for a date of `resource`: its own, then the tenant's."""
        own: ResourceMapping = getattr(self.resources, resource)
        return own.date_formats + tuple(f for f in self.tenant.date_formats if f not in own.date_formats)


# Fields nothing can stand in for: naming them "" (absent) is refused. Patterns over the dotted key.
REQUIRED_FIELDS: tuple[str, ...] = (
    "resources.*.path", "resources.*.key", "resources.*.last_mod",
    "fields.customer.code", "fields.customer.email",
    "fields.order.number", "fields.order.customer", "fields.order.status",
    "fields.*.lines.rows", "fields.*.lines.line_seq", "fields.*.lines.style", "fields.*.lines.qty",
    "fields.order.lines.price", "fields.pick.lines.price", "fields.invoice.lines.price",
    "fields.pick.number", "fields.pick.order",
    "fields.invoice.number", "fields.invoice.order", "fields.invoice.date",
    "fields.creditmemo.number", "fields.creditmemo.order", "fields.creditmemo.total",
    "fields.style.style", "fields.style.skus",
    "fields.inventory.style", "fields.inventory.warehouse",
    "fields.location.code",
)
# An address's child collection and type field, needed only while its layout is "rows".
ROW_ADDRESS_FIELDS = ("rows", "addr_type")

# What an absent field ("") becomes, where that is more than "empty". Every fallback is taken from ERP data,
# never from the fleet's clock, so a re-computation after state loss gives the same result.
FALLBACKS: dict[str, str] = {
    "fields.customer.status": "every customer is active: the first customer_status.active code",
    "fields.order.entered": "the confirmation date (a confirmed order without one is an invalid_record)",
    "fields.creditmemo.date": "the memo's last_mod as first recorded in the order's durable facts (its "
    "last_mod now, when none is recorded yet); memos take the order-level refund id in memo-number order",
    "fields.pick.ship_date": "the pick ticket's last_mod (as for a shipped pick without a ship date)",
}


def _field_keys(model: BaseModel, path: str) -> list[tuple[str, str]]:
    """(dotted key, ERP field name) of every field-name key in a [fields.*] table and its nested tables."""
    found: list[tuple[str, str]] = []
    if isinstance(model, FieldTable):
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                found += _field_keys(value, f"{path}.{name}")
            elif name == "rows" or name in type(model).field_keys():
                found.append((f"{path}.{name}", value or ""))
    return found


def absent_fields(mapping: Mapping) -> list[tuple[str, str]]:
    """(dotted key, what stands in for it) of every field the mapping declares absent (""), in table order:
    the documented fallback (`FALLBACKS`), or "empty" where nothing more is needed."""
    found: list[tuple[str, str]] = []
    for resource in type(mapping.fields).model_fields:
        for key, name in _field_keys(getattr(mapping.fields, resource), f"fields.{resource}"):
            if not name and key.rpartition(".")[2] not in ROW_ADDRESS_FIELDS:
                found.append((key, FALLBACKS.get(key, "empty: the tenant has no such value")))
    return found


def tenant_dialect_problems(mapping: Mapping) -> list[tuple[str, str]]:
    """(dotted key, why) for every way the mapping's field names contradict each other: a required field
    declared absent, a date field reading last_mod, a fallback without what it falls back on."""
    problems: list[tuple[str, str]] = []
    for resource in type(mapping.resources).model_fields:
        spec: ResourceMapping = getattr(mapping.resources, resource)
        for name in ("path", "key", "last_mod"):
            if not getattr(spec, name).strip():
                problems.append((f"resources.{resource}.{name}", "required: it cannot be absent (\"\")"))
    for resource in type(mapping.fields).model_fields:
        table = getattr(mapping.fields, resource)
        last_mod = getattr(mapping.resources, resource).last_mod
        for key, name in _field_keys(table, f"fields.{resource}"):
            parent, _, leaf = key.rpartition(".")
            address = getattr(mapping.fields, resource)
            for part in parent.split(".")[2:]:
                address = getattr(address, part)
            if isinstance(address, AddressFields) and leaf in ROW_ADDRESS_FIELDS:
                if address.layout == "rows" and not name:
                    problems.append((key, "required while layout = \"rows\": it cannot be absent (\"\")"))
                continue
            if not name and any(fnmatchcase(key, pattern) for pattern in REQUIRED_FIELDS):
                problems.append((key, "required: nothing can stand in for it, it cannot be absent (\"\")"))
            if name and name == last_mod and key.count(".") == 2:
                fallback = FALLBACKS.get(key)
                problems.append((key, f"names {name!r}, the resource's last-modified field: a value taken from it "
                                 "changes with every edit and would put last_mod in the change fingerprint"
                                 + (f"; declare the field absent (\"\") instead (fallback: {fallback})"
                                    if fallback else "; declare the field absent (\"\") instead")))
    if not mapping.fields.customer.status and not mapping.customer_status.active:
        problems.append(("customer_status.active", "fields.customer.status is absent, so every customer is "
                         "active: give at least one active code (what erp_status says)"))
    return problems


class MappingError(ValueError):
    """A mapping file that cannot be used: names the file, the key and what was expected."""


def _merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The file's keys laid over the documented defaults, table by table: a tenant writes only what differs
    (a table written whole in the file would otherwise lose the defaults of the keys it leaves out)."""
    out = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def load_mapping(path: Path | None) -> Mapping:
    if path is None:
        return Mapping()
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MappingError(f"{path}: mapping file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Mapping.model_validate(_merged(Mapping().model_dump(by_alias=True), raw))
    except ValidationError as exc:
        raise MappingError("\n".join(f"{path}: {line}" for line in validation_problems(exc))) from None


def validation_problems(exc: ValidationError) -> list[str]:
    """One line per problem: "key '<dotted key>': <what was expected> (got <value>)"."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        ctx = err.get("ctx") or {}
        if err["type"] == "mapping_keys":
            lines += [f"key '{key}': {detail}" for key, detail in ctx["problems"]]
            continue
        if err["type"] == "mapping_key":
            key = ".".join(loc + ([ctx["key"]] if ctx.get("key") else []))
            lines.append(f"key '{key}': {ctx['detail']}")
            continue
        key = ".".join(loc)
        expected = "an unknown key (typo?)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"key '{key}': {expected} (got {err.get('input')!r})")
    return lines


@lru_cache(maxsize=1)
def get_mapping() -> Mapping:
    return load_mapping(get_settings().mapping_file)
