"""Which lane a stock change travels on.

Fast: every change of a high-demand SKU, and for every SKU any change between zero and positive (what
back-in-stock alerts and sold-out pages turn on). Batch: every other quantity change, coalesced.
A SKU is high-demand when `mapping.stock.high_demand_skus` names it (its SKU key text, its UPC or its
variant external_id, exactly or as an fnmatch pattern, case-sensitive) or when more than
`high_demand_units` units of it were confirmed in the last `high_demand_window_hours` (the dynamic rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from config.lanes import Lane
from config.mapping import Stock
from sync.catalog.records import SkuKey
from sync.operations import Operation


def listed_high_demand(stock: Stock, sku: SkuKey, upc: str = "", external_id: str = "") -> bool:
    """Whether the configured list names this SKU by key, UPC or variant external_id (or a pattern)."""
    names = [name for name in (sku.text, upc, external_id) if name]
    for entry in stock.high_demand_skus:
        if entry in names or any(fnmatchcase(name, entry) for name in names):
            return True
    return False


def units_in_window(confirmations: Iterable[tuple[datetime, float]], now: datetime, hours: int) -> float:
    """Units confirmed within the last `hours` before `now`, from (confirmed_at, units) pairs."""
    since = now - timedelta(hours=hours)
    return sum(units for at, units in confirmations if since < at <= now)


def dynamically_high_demand(stock: Stock, recent_confirmed_units: float) -> bool:
    """The dynamic rule: units confirmed in the configured window above the configured threshold."""
    return recent_confirmed_units > stock.high_demand_units


def is_high_demand(
    stock: Stock, sku: SkuKey, upc: str = "", external_id: str = "", recent_confirmed_units: float = 0
) -> bool:
    return listed_high_demand(stock, sku, upc, external_id) or dynamically_high_demand(
        stock, recent_confirmed_units
    )


def stock_lane(previous: int | None, current: int, high_demand: bool) -> Lane | None:
    """The lane for a change from `previous` (last figure sent; None = never sent) to `current`.

    None when nothing changed. A first figure has no known transition, so it travels with the batch
    unless the SKU is high-demand: an initial load of every SKU must not flood the fast lane.
    """
    if previous == current:
        return None
    if high_demand:
        return "fast"
    if previous is not None and (previous == 0) != (current == 0):
        return "fast"
    return "batch"


def inventory_key(external_id: str) -> str:
    return f"variant-inventory:{external_id}"


def inventory_operation(
    external_id: str, quantity: int, version: str, lane: Lane, record: str | None = None
) -> Operation:
    """The `variant_inventory` operation carrying a figure and the ERP version it was computed from."""
    return Operation(
        kind="variant_inventory",
        key=inventory_key(external_id),
        lane=lane,
        version=version,
        record=record,
        payload={"external_id": external_id, "inventory_quantity": max(0, int(quantity))},
    )
