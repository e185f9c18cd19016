"""Stock figures -> `variant_inventory` operations on the right lane.

The caller supplies what the domain cannot know by itself: the figure last sent for each SKU (from the
delivery state), units confirmed recently (for the dynamic high-demand rule), and how a SKU maps to its
Klaviyo variant external_id (`key_only_external_ids` when the template uses SKU-key fields only, else a
lookup built from the styles with `CatalogTransform.variant_external_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field

from config.mapping import Catalog, Stock
from sync.catalog.records import SkuKey
from sync.catalog.templates import field_names, render
from sync.operations import Operation
from sync.stock.ats import AtsFigure
from sync.stock.urgency import inventory_operation, is_high_demand, stock_lane

KEY_FIELDS = frozenset({"style", "color_code", "lbl_code", "dimension", "size_desc", "upc"})


@dataclass(frozen=True)
class StockProblem:
    record: str
    reason: str


@dataclass
class StockPlan:
    operations: list[Operation] = field(default_factory=list)
    problems: list[StockProblem] = field(default_factory=list)


def key_only_external_ids(catalog: Catalog) -> Callable[[SkuKey, str], str] | None:
    """A renderer of variant external_ids from the SKU key and UPC, or None when the template needs
    style fields (then resolve through the catalog)."""
    names = set(field_names("variant_external_id", catalog.variant_external_id))
    if not names <= KEY_FIELDS:
        return None

    def external_id(sku: SkuKey, upc: str) -> str:
        context = {
            "style": sku.style, "color_code": sku.color, "lbl_code": sku.label,
            "dimension": sku.dimension, "size_desc": sku.size, "upc": upc,
        }
        return render("variant_external_id", catalog.variant_external_id, context)

    return external_id


def plan_stock(
    figures: Iterable[AtsFigure],
    stock: Stock,
    external_id: Callable[[SkuKey, str], str | None],
    delivered: MappingABC[SkuKey, int] | None = None,
    recent_confirmed_units: MappingABC[SkuKey, float] | None = None,
) -> StockPlan:
    """One operation per figure that differs from what was delivered, on the lane its change deserves."""
    delivered = delivered or {}
    recent = recent_confirmed_units or {}
    plan = StockPlan()
    for figure in figures:
        variant = external_id(figure.sku, figure.upc)
        if not variant:
            plan.problems.append(StockProblem(f"sku:{figure.sku.text}", "no catalog variant for this SKU"))
            continue
        high = is_high_demand(stock, figure.sku, figure.upc, variant, recent.get(figure.sku, 0))
        lane = stock_lane(delivered.get(figure.sku), figure.quantity, high)
        if lane is None:
            continue
        version = figure.version.encode()
        record = f"sku:{figure.sku.text}"
        plan.operations.append(inventory_operation(variant, figure.quantity, version, lane, record))
    return plan
