"""Available-to-sell per SKU over the sellable warehouses: never plain stock on hand.

Per warehouse, by `mapping.stock.formula`:
  * `avail_minus_open` (default): available on hand - open orders, where available on hand is the ERP's
    own `qty_avail` (= on hand - picked); only when a row has no `qty_avail` is it derived as
    `qty_oh - qty_pick`. Picked units are therefore subtracted exactly once.
  * `direct_ats`: the tenant's own ATS field (`mapping.fields.inventory.ats`).
The warehouse figures are summed over the sellable warehouses and the *total* is floored at 0 (and
rounded down to whole units). Negative warehouse figures are real: oversold stock or units owed to open
orders there will be served from the pooled stock, so flooring per warehouse would promise units already
owed elsewhere and fire a back-in-stock alert for nothing. A SKU with no row in a warehouse counts 0 there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from config.mapping import US_STAMP_FORMATS, InventoryFields, LocationFields, MappingError, Stock
from sync.catalog.records import RecordError, SkuKey
from sync.catalog.values import code, decimal, flag, stamp
from sync.fields import normalised
from sync.stock.rows import Versioned
from sync.stock.versions import FigureVersion

Formula = Literal["avail_minus_open", "direct_ats"]


class StockConfigError(MappingError):
    """A stock configuration that cannot give a true available-to-sell figure."""


@dataclass(frozen=True, slots=True)
class InventoryRow:
    """One SKU in one warehouse, as the inventory resource (or the CSV inventory report) states it."""

    sku: SkuKey
    upc: str
    warehouse: str
    on_hand: Decimal | None
    picked: Decimal | None
    available: Decimal | None
    open_orders: Decimal | None
    ats: Decimal | None
    last_mod: datetime | None


@dataclass(frozen=True, slots=True)
class AtsFigure:
    sku: SkuKey
    upc: str
    quantity: int  # what Klaviyo's inventory_quantity must be
    version: FigureVersion  # from every row and location record it was computed from
    by_warehouse: MappingABC[str, Decimal]  # unfloored figure per sellable warehouse with a row


def parse_inventory_row(raw: Any, fields: InventoryFields, last_mod_field: str = "last_mod",
                        date_formats: Sequence[str] = US_STAMP_FORMATS) -> InventoryRow:
    """A typed row from one raw inventory record (after the mapping's normalisers; last_mod in ISO or one of
    `date_formats`, the inventory resource's: `Mapping.date_formats`); raises `RecordError` naming the SKU and
    warehouse."""
    if not isinstance(raw, MappingABC):
        raise RecordError("inventory:?", f"expected an object, got {type(raw).__name__}")
    raw = normalised(raw, fields)
    sku = SkuKey(
        style=code(raw.get(fields.style)),
        color=code(raw.get(fields.color_code)),
        label=code(raw.get(fields.lbl_code)),
        dimension=code(raw.get(fields.dimension)),
        size=code(raw.get(fields.size_desc)),
    )
    warehouse = code(raw.get(fields.warehouse))
    record = f"inventory:{sku.text}@{warehouse or '?'}"
    if not sku.style:
        raise RecordError(record, f"no style in field '{fields.style}'")
    if not warehouse:
        raise RecordError(record, f"no warehouse in field '{fields.warehouse}'")
    try:
        return InventoryRow(
            sku=sku,
            upc=code(raw.get(fields.upc)),
            warehouse=warehouse,
            on_hand=decimal(raw.get(fields.on_hand), fields.on_hand),
            picked=decimal(raw.get(fields.picked), fields.picked),
            available=decimal(raw.get(fields.available_on_hand), fields.available_on_hand),
            open_orders=decimal(raw.get(fields.open_orders), fields.open_orders),
            ats=decimal(raw.get(fields.ats), fields.ats) if fields.ats else None,
            last_mod=stamp(raw.get(last_mod_field), last_mod_field, date_formats),
        )
    except ValueError as exc:
        raise RecordError(record, str(exc)) from None


def sellable_warehouses(
    stock: Stock, locations: Iterable[Any] = (), fields: LocationFields | None = None
) -> frozenset[str]:
    """`stock.sellable_warehouses`, or else every Location record flagged sellable.

    Raises `StockConfigError` when that leaves none: zeroing every SKU in Klaviyo is never the answer.
    """
    if stock.sellable_warehouses:
        return frozenset(code(w) for w in stock.sellable_warehouses)
    fields = fields or LocationFields()
    flagged = frozenset(
        code(loc.get(fields.code))
        for loc in locations
        if isinstance(loc, MappingABC) and code(loc.get(fields.code)) and flag(loc.get(fields.sellable))
    )
    if not flagged:
        raise StockConfigError(
            "no sellable warehouse: set mapping key 'stock.sellable_warehouses' or flag Location records "
            f"sellable (field '{fields.sellable}')"
        )
    return flagged


def check_formula(formula: Formula, fields: InventoryFields) -> None:
    if formula == "direct_ats" and not fields.ats:
        raise StockConfigError(
            "mapping key 'stock.formula' = 'direct_ats' needs 'fields.inventory.ats' (the ATS field name)"
        )


def warehouse_ats(row: InventoryRow, formula: Formula) -> Decimal:
    """One warehouse's available-to-sell, unfloored (may be negative)."""
    if formula == "direct_ats":
        return row.ats if row.ats is not None else Decimal(0)
    available = row.available
    if available is None:
        available = (row.on_hand or Decimal(0)) - (row.picked or Decimal(0))
    return available - (row.open_orders or Decimal(0))


def latest_rows(rows: Iterable[InventoryRow]) -> dict[tuple[SkuKey, str], InventoryRow]:
    """One row per SKU and warehouse, the newest by `last_mod` (a later row wins a tie): re-read rows
    from an overlap window or a repeated report line are never counted twice."""
    latest: dict[tuple[SkuKey, str], InventoryRow] = {}
    for row in rows:
        slot = (row.sku, row.warehouse)
        held = latest.get(slot)
        if held is None or (row.last_mod or datetime.min) >= (held.last_mod or datetime.min):
            latest[slot] = row
    return latest


def compute_ats(
    rows: Iterable[InventoryRow],
    sellable: frozenset[str],
    formula: Formula = "avail_minus_open",
    skus: Iterable[SkuKey] = (),
    versions: MappingABC[SkuKey, FigureVersion] | None = None,
) -> dict[SkuKey, AtsFigure]:
    """Available-to-sell for every SKU in `rows` (and in `skus`, which are 0 when they have no rows).

    `versions`: each SKU's figure version (see `stored_figure`, which computes it from what was stored);
    a SKU not in it gets the version of no input.
    """
    per_sku: dict[SkuKey, list[InventoryRow]] = {sku: [] for sku in skus}
    upcs: dict[SkuKey, str] = {}
    for row in latest_rows(rows).values():
        per_sku.setdefault(row.sku, [])
        if row.upc:
            upcs.setdefault(row.sku, row.upc)  # any warehouse's row names the UPC
        if row.warehouse in sellable:
            per_sku[row.sku].append(row)
    figures: dict[SkuKey, AtsFigure] = {}
    for sku, sellable_rows in per_sku.items():
        by_warehouse = {row.warehouse: warehouse_ats(row, formula) for row in sellable_rows}
        total = sum(by_warehouse.values(), Decimal(0))
        figures[sku] = AtsFigure(
            sku=sku,
            upc=upcs.get(sku, ""),
            quantity=max(0, math.floor(total)),
            version=(versions or {}).get(sku) or FigureVersion.of(()),
            by_warehouse=by_warehouse,
        )
    return figures


def stored_figure(
    rows: Iterable[Versioned],
    locations: Iterable[Versioned],
    sellable: frozenset[str],
    fields: InventoryFields,
    last_mod_field: str = "last_mod",
    formula: Formula = "avail_minus_open",
    date_formats: Sequence[str] = US_STAMP_FORMATS,
) -> AtsFigure | None:
    """The figure of ONE SKU from all its stored rows (one per warehouse), versioned by every row - sellable
    or not - and every location record (`FigureVersion`); None when there is no row."""
    held = list(rows)
    parsed = [parse_inventory_row(row.raw, fields, last_mod_field, date_formats) for row in held]
    if not parsed:
        return None
    sku = parsed[0].sku
    version = FigureVersion.of([row.version for row in held] + [loc.version for loc in locations])
    return compute_ats(parsed, sellable, formula, skus=[sku], versions={sku: version})[sku]
