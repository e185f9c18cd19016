"""What the oracle needs to know about a tenant: the ERP's field names (a `Dialect`) and the few mapping
settings the rules depend on (`TenantRules`), read from the tenant's mapping TOML by its own reader.

The rules are written down in docs/rules.md; nothing here comes from the product's config package.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Dialect:
    """Field names of one ERP dialect, and how its values are written. A new dialect is a new instance in
    DIALECTS, never new code. An empty name ("") is a field the tenant does not have (docs/rules.md, "Absent
    fields"); text is always trimmed and emails lower-cased, so padded codes and upper-case emails need nothing."""

    date_formats: tuple[str, ...] = ()  # strptime formats tried in order before ISO 8601, for every time read

    customer: str = "customer"
    customer_code: str = "customer"
    customer_email: str = "email"
    customer_phone: str = "phone"
    customer_status: str = "status"
    customer_delete_flag: str = "delete_flag"
    customer_email_optin: str = "email_optin"
    customer_sms_optin: str = "sms_optin"

    order: str = "order"
    order_number: str = "ord_num"
    order_customer: str = "customer"
    order_type: str = "ord_type"
    order_division: str = "division"
    order_channel: str = "sales_channel"
    order_status: str = "ord_status"
    order_entered: str = "ord_date"
    order_confirmed: str = "confirm_date"
    order_discount: str = "disc_amt"
    order_tax: str = "tax_amt"
    order_freight: str = "frgt_amt"
    order_storefront_ref: str = "web_ref"
    order_addresses: str = "orderaddress"
    address_prefixes: tuple[str, ...] = ()  # (bill-to, ship-to): addresses flat on the record, `<prefix><field>`
    address_type: str = "addr_type"
    address_bill_to: str = "BT"
    address_ship_to: str = "ST"
    address_email: str = "email"
    order_lines: str = "orderdetail"
    line_seq: str = "line_seq"
    line_price: str = "price"
    order_line_qty: str = "ord_qty"
    order_line_cancel_qty: str = "cancel_qty"

    pick: str = "pick"
    pick_number: str = "pick_num"
    pick_order: str = "ord_num"
    pick_status: str = "pick_status"
    pick_ship_date: str = "ship_date"
    pick_shipped_by_date: bool = False  # a ticket shipped when its ship date is set, whatever its status says
    pick_lines: str = "pickdetail"
    pick_line_qty: str = "total_qty"

    invoice: str = "invoice"
    invoice_number: str = "inv_num"
    invoice_order: str = "ord_num"
    invoice_date: str = "inv_date"
    invoice_lines: str = "invoicedetail"
    invoice_line_qty: str = "inv_qty"

    creditmemo: str = "creditmemo"
    memo_number: str = "memo_num"
    memo_order: str = "ord_num"
    memo_date: str = "memo_date"
    memo_total: str = "total_amt"

    style: str = "style"
    style_code: str = "style"
    style_name: str = "style_name"
    style_description: str = "style_desc"
    style_brand: str = "group_code1"
    style_category: str = "group_code2"
    style_gender: str = "group_code3"
    style_division: str = "division"
    style_season: str = "season"
    style_status: str = "status"
    style_skus: str = "stylecolorsizes"
    sku_color: str = "color_code"
    sku_color_name: str = "color_name"
    sku_label: str = "lbl_code"
    sku_dimension: str = "dimension"
    sku_size: str = "size_desc"
    sku_upc: str = "upc"
    sku_ean: str = "ean"
    sku_status: str = "status"

    inventory: str = "inventory"
    inventory_style: str = "style"
    inventory_color: str = "color_code"
    inventory_label: str = "lbl_code"
    inventory_dimension: str = "dimension"
    inventory_size: str = "size_desc"
    inventory_warehouse: str = "location"
    inventory_on_hand: str = "qty_oh"
    inventory_picked: str = "qty_pick"
    inventory_available: str = "qty_avail"
    inventory_open: str = "qty_open"

    location: str = "Location"
    location_code: str = "location"
    location_sellable: str = "sellable"

    last_mod: str = "last_mod"


# docs/sandbox.md, "Blue Cherry dialects": a tenant on IBM i whose bcapi views its integrator customised
IBMI = Dialect(
    date_formats=("%m/%d/%Y %H:%M:%S", "%m/%d/%Y"),
    customer="CustomerMaster", customer_code="cust_code", customer_email="email_addr", customer_phone="phone_nbr",
    customer_status="", customer_delete_flag="del_flag", customer_email_optin="email_opt", customer_sms_optin="sms_opt",
    order="SalesOrder", order_number="order_no", order_customer="cust_code", order_type="order_type",
    order_division="division", order_channel="order_src", order_status="order_stat", order_entered="",
    order_confirmed="conf_dt", order_discount="disc_amt", order_tax="tax_amt", order_freight="frt_amt",
    order_storefront_ref="ecom_ref", order_addresses="", address_prefixes=("bill_", "ship_"), address_email="email",
    order_lines="soline", line_seq="line_no", line_price="unit_prc", order_line_qty="qty_ord",
    order_line_cancel_qty="qty_cncl",
    pick="PickTicket", pick_number="pick_no", pick_order="order_no", pick_status="pick_stat", pick_ship_date="ship_dt",
    pick_shipped_by_date=True, pick_lines="pkline", pick_line_qty="qty_pick",
    invoice="Invoice", invoice_number="inv_no", invoice_order="order_no", invoice_date="inv_dt",
    invoice_lines="invline", invoice_line_qty="qty_inv",
    creditmemo="CreditMemo", memo_number="memo_no", memo_order="order_no", memo_date="", memo_total="memo_total",
    style="StyleMaster", style_code="style_no", style_name="descr", style_description="long_desc",
    style_brand="brand_cd", style_category="categ_cd", style_gender="gender_cd", style_division="division",
    style_season="season", style_status="style_stat", style_skus="stylesku", sku_color="color_cd",
    sku_color_name="color_desc", sku_label="label_cd", sku_dimension="dim_cd", sku_size="size_cd", sku_upc="upc",
    sku_ean="ean", sku_status="sku_stat",
    inventory="ItemAvailability", inventory_style="style_no", inventory_color="color_cd", inventory_label="label_cd",
    inventory_dimension="dim_cd", inventory_size="size_cd", inventory_warehouse="whse_code", inventory_on_hand="qty_oh",
    inventory_picked="qty_pick", inventory_available="qty_avail", inventory_open="qty_open",
    location="Warehouse", location_code="whse_code", location_sellable="sell_fl",
    last_mod="chg_stamp",
)
DIALECTS: dict[str, Dialect] = {"default": Dialect(), "ibmi": IBMI}


@dataclass(frozen=True)
class TenantRules:
    """The mapping settings the rules depend on, with the documented defaults (docs/configuration.md)."""

    timezone: str | None = None  # None: the dump's own time zone
    phone_region: str = "US"
    yes_values: tuple[str, ...] = ("Y", "y", "1", "true", "TRUE")
    customer_active: tuple[str, ...] = ("A",)
    customer_inactive: tuple[str, ...] = ("I",)
    entered: tuple[str, ...] = ("E",)
    confirmed: tuple[str, ...] = ("O", "P")
    on_hold: tuple[str, ...] = ("H",)
    cancelled: tuple[str, ...] = ("X",)
    closed: tuple[str, ...] = ("C",)
    order_types: tuple[str, ...] = ("WEB", "RTL")
    divisions: tuple[str, ...] = ()  # empty = all
    sales_channels: tuple[str, ...] = ("WEB", "POS")
    catch_all_customers: tuple[str, ...] = ("WEBGUEST",)
    use_storefront_ref: bool = False
    storefront_sends_placed: tuple[str, ...] = ()  # channels whose storefront sends Placed Order itself
    dispatch_document: str = "pick"  # or "invoice"
    pick_shipped_value: str = "S"
    value_includes_tax: bool = True
    value_includes_freight: bool = True
    placed_order: str = "Placed Order"
    ordered_product: str = "Ordered Product"
    updated_order: str = "Updated Order"
    fulfilled_order: str = "Fulfilled Order"
    cancelled_order: str = "Cancelled Order"
    refunded_order: str = "Refunded Order"
    aggregate_prefix: str = "erp_"
    variant_external_id: str = "{style}-{color_code}-{lbl_code}-{dimension}-{size_desc}"
    discontinued_values: tuple[str, ...] = ("D",)
    sellable_warehouses: tuple[str, ...] = ()  # empty = every location flagged sellable
    stock_formula: str = "avail_minus_open"  # or "direct_ats"
    ats_field: str | None = None  # the tenant's own ATS field (direct_ats)

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.placed_order, self.ordered_product, self.updated_order, self.fulfilled_order,
                self.cancelled_order, self.refunded_order)

    @classmethod
    def from_toml(cls, path: Path | str) -> TenantRules:
        """The rules of a tenant's mapping file; keys it does not set keep their defaults."""
        with Path(path).open("rb") as handle:
            document = tomllib.load(handle)
        settings: dict[str, Any] = {}
        for attribute, (section, *keys) in TOML_KEYS.items():
            value: Any = document.get(section, {})
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                settings[attribute] = tuple(value) if isinstance(value, list) else value
        known = {f.name for f in fields(cls)}
        return replace(cls(), **{k: v for k, v in settings.items() if k in known})


# TenantRules attribute -> where the mapping TOML keeps it (docs/configuration.md, "Every mapping key")
TOML_KEYS: dict[str, tuple[str, ...]] = {
    "timezone": ("tenant", "timezone"),
    "phone_region": ("tenant", "default_phone_region"),
    "yes_values": ("fields", "customer", "yes_values"),
    "customer_active": ("customer_status", "active"),
    "customer_inactive": ("customer_status", "inactive"),
    **{stage: ("lifecycle", stage) for stage in ("entered", "confirmed", "on_hold", "cancelled", "closed")},
    **{name: ("lifecycle", name) for name in (
        "order_types", "divisions", "sales_channels", "catch_all_customers", "use_storefront_ref",
        "storefront_sends_placed", "dispatch_document", "value_includes_tax", "value_includes_freight")},
    "pick_shipped_value": ("fields", "pick", "shipped_value"),
    **{metric: ("metrics", metric) for metric in (
        "placed_order", "ordered_product", "updated_order", "fulfilled_order", "cancelled_order", "refunded_order")},
    "aggregate_prefix": ("profiles", "aggregate_prefix"),
    "variant_external_id": ("catalog", "variant_external_id"),
    "discontinued_values": ("fields", "style", "discontinued_values"),
    "sellable_warehouses": ("stock", "sellable_warehouses"),
    "stock_formula": ("stock", "formula"),
    "ats_field": ("fields", "inventory", "ats"),
}
