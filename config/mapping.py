"""Tenant mapping: which Blue Cherry resources hold what, every field name read, status codes,
Klaviyo metric names, field policies, high-demand SKUs and exception owners.

The defaults below match the sandbox (and are what `mapping.example.toml` lists). A tenant whose API
differs overrides keys in its own TOML file (``BCSYNC_MAPPING_FILE``). Every model forbids unknown keys,
so a typo is refused at start with the file, the key and what was expected.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.settings import get_settings

Owner = Literal["operations", "ecommerce", "finance"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantMapping(Strict):
    timezone: str = "America/New_York"
    default_phone_region: str = "US"
    source_system: str = "Blue Cherry"
    currency: str = "USD"


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


class AddressFields(Strict):
    rows: str  # child collection name, e.g. "custaddress"
    addr_type: str = "addr_type"
    bill_to: str = "BT"
    ship_to: str = "ST"
    name: str = "name"
    addr1: str = "addr1"
    addr2: str = "addr2"
    city: str = "city"
    state: str = "state"
    zipcode: str = "zipcode"
    country: str = "country"
    email: str = "email"
    phone: str = "phone"


class CustomerFields(Strict):
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


class LineFields(Strict):
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


class OrderFields(Strict):
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


class PickFields(Strict):
    number: str = "pick_num"
    order: str = "ord_num"
    status: str = "pick_status"
    shipped_value: str = "S"
    ship_date: str = "ship_date"
    carrier: str = "shipper"
    tracking: str = "tracking_num"
    invoice: str = "inv_num"
    lines: LineFields = LineFields(rows="pickdetail", qty="total_qty", cancel_qty="bk_qty")


class InvoiceFields(Strict):
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


class CreditMemoFields(Strict):
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


class StyleFields(Strict):
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


class InventoryFields(Strict):
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


class LocationFields(Strict):
    code: str = "location"
    name: str = "loc_name"
    sellable: str = "sellable"


class Resources(Strict):
    customer: ResourceMapping = ResourceMapping(path="customer", poll_seconds=10)
    order: ResourceMapping = ResourceMapping(path="order", poll_seconds=30)
    pick: ResourceMapping = ResourceMapping(path="pick", poll_seconds=60)
    invoice: ResourceMapping = ResourceMapping(path="invoice", poll_seconds=60)
    creditmemo: ResourceMapping = ResourceMapping(path="creditmemo", poll_seconds=120)
    style: ResourceMapping = ResourceMapping(path="style", poll_seconds=600)
    inventory: ResourceMapping = ResourceMapping(path="inventory", poll_seconds=10)
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
        return Mapping.model_validate(_merged(Mapping().model_dump(), raw))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            expected = "an unknown key (typo?)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{path}: key '{key}': {expected} (got {err.get('input')!r})")
        raise MappingError("\n".join(problems)) from None


@lru_cache(maxsize=1)
def get_mapping() -> Mapping:
    return load_mapping(get_settings().mapping_file)
