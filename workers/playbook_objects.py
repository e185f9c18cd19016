"""Where each Blue Cherry data object lives in Klaviyo, for `bcsync playbook`: one entry per resource and per mapped
field, rendered with the tenant's own field names (the mapping) and metric names.

The field names come from the mapping at render time; only the Klaviyo side is written here. Text may name
`{p}` (the profile property prefix, `profiles.aggregate_prefix`) and `{placed_order}` ... (`[metrics]`). A mapped
field without an entry is shown as read by the fleet (a filter, a date, a join), so the table is never short of a
field the mapping has. Customer attributes come from the customer transform's own table
(`sync.customers.profiles.ATTRIBUTES_OF`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sync.customers.profiles import ATTRIBUTES_OF


@dataclass(frozen=True)
class DataObject:
    resource: str  # the mapping's resource (resources.<resource>, fields.<resource>)
    klaviyo: str  # what it becomes in Klaviyo
    lane: str  # which lane carries it, and when
    fields: dict[str, str]  # mapping key under fields.<resource> -> what it becomes in Klaviyo


def _customer_fields() -> dict[str, str]:
    out = {key: ", ".join(f"profile `{a}`" if a != "properties" else f"profile property `{{p}}{key}`"
                          for a in attrs) for key, attrs in ATTRIBUTES_OF.items()}
    out.update({
        "code": "profile `external_id` and property `{p}customer_code`",
        "groups": "profile property `{p}<field name>` for each",
        "addresses": "profile `location` (bill-to address)",
        "email_optin": "e-mail marketing subscribe / unsubscribe (list `consent.email_list_id`)",
        "sms_optin": "SMS marketing subscribe / unsubscribe (list `consent.sms_list_id`)",
        "email_optin_date": "consent time of the e-mail subscription",
        "sms_optin_date": "consent time of the SMS subscription",
        "delete_flag": "Klaviyo data-privacy deletion of the profile",
    })
    return out


_LINES = "`Items` of the order's events; each order line one `{ordered_product}` event"
_DISPATCH = "`{fulfilled_order}` event property"

DATA_OBJECTS: tuple[DataObject, ...] = (
    DataObject("customer", "Klaviyo profile (found by `external_id` = customer code, then e-mail) and its e-mail / SMS "
               "marketing consent",
               "fast for a new customer, consent and the immediate fields (`field_policy.immediate`); the other "
               "fields in the daily profile batch (batch lane)", _customer_fields()),
    DataObject("order", "events `{placed_order}`, `{ordered_product}` (one per line), `{updated_order}`, "
               "`{cancelled_order}` on the customer's profile; the profile's `{p}` aggregates "
               "(`{p}order_count`, `{p}net_lifetime_value`, ...)", "default (a cancellation: fast)", {
                   "number": "`OrderId` and `ErpOrderNumber` of every order event (their `unique_id`s)",
                   "customer": "whose profile the events are on",
                   "status": "which event: placed, updated, cancelled (lifecycle status codes)",
                   "confirmed": "the time of `{placed_order}`",
                   "entered": "the time of `{placed_order}` when there is no confirmation date",
                   "currency": "the events' currency", "discount_code": "`DiscountCode`",
                   "discount": "`DiscountValue`", "tax": "`Tax`", "freight": "`Freight`", "season": "`Season`",
                   "warehouse": "`Warehouse`", "division": "`Division`", "ord_type": "`OrderType`",
                   "sales_channel": "`SalesChannel`",
                   "storefront_ref": "`OrderId` when the storefront sends Placed Order",
                   "addresses": "`BillingAddress`, `ShippingAddress`", "lines": _LINES,
               }),
    DataObject("pick", "`{fulfilled_order}` events (`DispatchDocumentType` pick)", "default", {
        "number": "`DispatchDocument`", "carrier": "`Carrier`", "tracking": "`TrackingNumber`",
        "status": "shipped or not (`shipped_value`)", "ship_date": "the time of `{fulfilled_order}`",
        "lines": "`Items`, `ItemsShipped`, `Partial`",
    }),
    DataObject("invoice", "`{fulfilled_order}` events (`DispatchDocumentType` invoice)", "default", {
        "number": "`DispatchDocument`", "carrier": "`Carrier`", "tracking": "`TrackingNumber`",
        "date": "the time of `{fulfilled_order}`", "lines": "`Items`, `ItemsShipped`, `Partial`",
    }),
    DataObject("creditmemo", "`{refunded_order}` events", "default", {
        "number": "`CreditMemo`", "invoice": "`Invoice`", "reason": "`Reason`", "reason_code": "`ReasonCode`",
        "restock": "`Restocked`", "tax": "`Tax`", "freight": "`Freight`", "total": "the event's value",
        "date": "the time of `{refunded_order}`", "lines": "`Items`",
    }),
    DataObject("style", "catalog items and variants (ids, titles, URLs from the `[catalog]` templates)", "batch", {
        "style": "part of the item and variant ids", "name": "item and variant `title`",
        "description": "item `description`", "price": "item and variant `price`",
        "status": "published, or retired when discontinued (`discontinued_values`)",
        "skus": "one catalog variant per SKU row", "sku_upc": "variant `sku` / id template `{{upc}}`",
        "sku_price": "variant `price`", "brand": "item `custom_metadata`", "category": "item `custom_metadata`",
        "gender": "item `custom_metadata`", "division": "item `custom_metadata`", "season": "item `custom_metadata`",
    }),
    DataObject("inventory", "catalog variant `inventory_quantity` (available to sell over the sellable warehouses)",
               "fast for scarce and high-demand SKUs, batch otherwise; each SKU debounced", {
                   "available_on_hand": "`inventory_quantity` (formula `avail_minus_open`)",
                   "open_orders": "subtracted from it (formula `avail_minus_open`)",
                   "ats": "`inventory_quantity` (formula `direct_ats`)",
                   "warehouse": "summed over the sellable warehouses only",
               }),
    DataObject("location", "nothing of its own: which warehouses' stock counts as sellable", "batch", {
        "sellable": "whether the warehouse's stock counts", "code": "the warehouse inventory rows name",
    }),
)
