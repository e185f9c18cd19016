"""What the fleet would send for a few sampled records of each kind, computed by the product's own transforms
(the same functions the flows call): a customer's profile upsert and consent calls (`sync.customers`), an
order's events from its documents (`sync.orders.desired` on an empty ledger: a first sync), a style's catalog
items and variants (`sync.catalog.transform`) and stock figures (`sync.stock`)."""

from __future__ import annotations

from collections.abc import Mapping as AnyMapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from config.mapping import Mapping
from sync.catalog.records import RecordError, SkuKey, Style
from sync.catalog.templates import MissingField, TemplateError
from sync.catalog.transform import CatalogTransform
from sync.customers.consent import consent_intents
from sync.customers.profiles import profile_payload
from sync.customers.records import CustomerRecord
from sync.fields import field_text, normalised
from sync.operations import Operation
from sync.orders.desired import DeliveredView, desired_operations
from sync.orders.fallbacks import date_memos
from sync.orders.records import OrderHeader, parse_order_documents
from sync.stock.ats import InventoryRow, StockConfigError, compute_ats, sellable_warehouses
from sync.stock.plan import key_only_external_ids, plan_stock


@dataclass(frozen=True)
class Preview:
    """One sampled record and what the fleet would send for it (`operations`: kind, key, payload)."""

    record: str
    operations: tuple[dict[str, Any], ...] = ()
    note: str = ""


def _op(operation: Operation) -> dict[str, Any]:
    return {"kind": operation.kind, "key": operation.key, "lane": operation.lane, "payload": operation.payload}


def customer_previews(customers: Sequence[CustomerRecord], mapping: Mapping, count: int) -> list[Preview]:
    """A first sync of each customer: its full profile upsert, then a subscribe or unsubscribe per channel."""
    previews = []
    for customer in customers[:count]:
        ops: list[dict[str, Any]] = [{"kind": "profile_upsert", "key": f"profile:{customer.code}:full",
                                      "payload": profile_payload(customer, mapping, "full")}]
        intents, problems = consent_intents("created", [], customer)
        ops += [{"kind": intent.action, "channel": intent.channel} for intent in intents]
        previews.append(Preview(f"customer:{customer.code}", tuple(ops),
                                "; ".join(problem.reason for problem in problems)))
    return previews


def order_previews(orders: Sequence[tuple[OrderHeader, AnyMapping[str, Any]]],
                   documents: AnyMapping[str, Sequence[AnyMapping[str, Any]]], mapping: Mapping,
                   count: int) -> list[Preview]:
    """Each order with the sampled picks, invoices and memos that point at it, as a first sync computes it (no
    event delivered yet; undated memos dated from their last_mod, as with no facts recorded)."""
    previews: list[Preview] = []
    for header, raw in orders:
        if len(previews) == count:
            break
        own = {resource: [doc for doc in documents.get(resource, ()) if _order_of(doc, resource, mapping)
                          == header.number] for resource in ("pick", "invoice", "creditmemo")}
        parsed = parse_order_documents(raw, mapping, own["pick"], own["invoice"], own["creditmemo"])
        if parsed.documents is None:
            continue
        result = desired_operations(date_memos(parsed.documents, {}), DeliveredView(), mapping)
        if result.excluded:
            continue
        notes = [str(problem) for problem in (*parsed.problems, *result.problems)]
        held = ", ".join(f"{len(v)} {k}" for k, v in own.items() if v) or "no documents in the sample"
        previews.append(Preview(header.record_key, tuple(_op(op) for op in result.operations),
                                "; ".join([f"with {held}", *notes])))
    return previews


def _order_of(raw: AnyMapping[str, Any], resource: str, mapping: Mapping) -> str:
    table = getattr(mapping.fields, resource)
    return field_text(normalised(raw, table), table.order)


def catalog_previews(styles: Sequence[Style], mapping: Mapping, count: int) -> list[Preview]:
    try:
        transform = CatalogTransform(mapping)
    except TemplateError as exc:
        return [Preview("catalog", (), f"the catalog templates cannot be rendered: {exc}")]
    previews = []
    for style in styles[:count]:
        plan = transform.operations(style)
        previews.append(Preview(f"style:{style.style}", tuple(_op(op) for op in plan.operations),
                                "; ".join(problem.reason for problem in plan.problems)))
    return previews


@dataclass(frozen=True)
class StockView:
    """Stock figures of the sampled inventory rows, and what the variant ids they name say about the catalog."""

    previews: list[Preview]
    catalog_ids: int  # SKUs both in the sampled styles and in the sampled inventory
    matching_ids: int  # ... whose stock variant id is the catalog's variant id
    examples: tuple[str, ...] = ()


def stock_previews(rows: Sequence[InventoryRow], locations: Sequence[AnyMapping[str, Any]], styles: Sequence[Style],
                   mapping: Mapping, count: int) -> StockView:
    """The figures of the first SKUs (available-to-sell over the sellable warehouses of the sampled locations)
    as `variant_inventory` operations, named as the stock flow names them: by the SKU key when the template
    needs nothing else, else through the sampled styles."""
    try:
        sellable = sellable_warehouses(mapping.stock, locations, mapping.fields.location)
    except StockConfigError as exc:
        return StockView([Preview("stock", (), str(exc))], 0, 0)
    catalog = _catalog_ids(styles, mapping)
    by_key = key_only_external_ids(mapping.catalog)
    figures = compute_ats(rows, sellable, mapping.stock.formula)

    def external_id(sku: SkuKey, upc: str) -> str | None:
        return by_key(sku, upc) if by_key is not None else catalog.get(sku)

    both = [figure for sku, figure in figures.items() if sku in catalog]
    matching = [f for f in both if external_id(f.sku, f.upc) == catalog[f.sku]]
    examples = tuple(f"{f.sku.text}: stock names {external_id(f.sku, f.upc)!r}, the catalog {catalog[f.sku]!r}"
                     for f in both if f not in matching)[:3]
    chosen = list(figures.values())[:count]
    plan = plan_stock(chosen, mapping.stock, external_id)
    previews = [Preview(op.record or "stock", (_op(op),)) for op in plan.operations]
    previews += [Preview(problem.record, (), problem.reason) for problem in plan.problems]
    return StockView(previews, len(both), len(matching), examples)


def _catalog_ids(styles: Sequence[Style], mapping: Mapping) -> dict[SkuKey, str]:
    """Each sampled SKU's variant external id as the catalog would create it."""
    try:
        transform = CatalogTransform(mapping)
    except TemplateError:
        return {}
    ids: dict[SkuKey, str] = {}
    for style in styles:
        for sku in style.skus:
            try:
                ids[sku.key] = transform.variant_external_id(style, sku)
            except (MissingField, RecordError):
                continue
    return ids
