"""Lane routing, the stock operations, debouncing and newest-wins at send time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from config.mapping import Catalog, InventoryFields, Stock
from sync.catalog.records import SkuKey
from sync.stock.ats import compute_ats, parse_inventory_row
from sync.stock.coalesce import PendingFigure, due, merge, newest_wins
from sync.stock.plan import key_only_external_ids, plan_stock
from sync.stock.urgency import (
    dynamically_high_demand,
    is_high_demand,
    listed_high_demand,
    stock_lane,
    units_in_window,
)
from sync.stock.versions import FigureVersion
from tests.unit.sync.stock.conftest import inventory_record

HOT = SkuKey("T100", "BLK", "", "", "S")
COLD = SkuKey("T100", "BLK", "", "", "M")
STOCK = Stock(high_demand_skus=("T100-BLK---S",))


@pytest.mark.parametrize(
    ("previous", "current", "high", "lane"),
    [
        (3, 5, True, "fast"),  # high-demand: every change is fast
        (3, 5, False, "batch"),  # any other SKU: batch
        (0, 5, False, "fast"),  # back in stock: fast for every SKU
        (5, 0, False, "fast"),  # sold out: fast for every SKU
        (5, 5, True, None),  # no change: nothing to send
        (None, 5, False, "batch"),  # first figure of an ordinary SKU
        (None, 0, True, "fast"),
    ],
)
def test_stock_lane(previous: int | None, current: int, high: bool, lane: str | None) -> None:
    assert stock_lane(previous, current, high) == lane


def test_high_demand_by_key_upc_external_id_or_pattern() -> None:
    assert listed_high_demand(Stock(high_demand_skus=("T100-BLK---S",)), HOT)
    assert listed_high_demand(Stock(high_demand_skus=("0123",)), COLD, upc="0123")
    assert listed_high_demand(Stock(high_demand_skus=("web-*",)), COLD, external_id="web-42")
    assert listed_high_demand(Stock(high_demand_skus=("T100-*",)), COLD)
    assert not listed_high_demand(Stock(high_demand_skus=("t100-*",)), COLD)  # codes are case-sensitive
    assert not listed_high_demand(Stock(), HOT, upc="0123")


def test_dynamic_rule_counts_units_confirmed_in_the_window_above_the_threshold() -> None:
    stock = Stock(high_demand_window_hours=24, high_demand_units=20)
    now = datetime(2026, 11, 20, 12, 0)
    confirmations = [(now - timedelta(hours=1), 15.0), (now - timedelta(hours=23), 6.0),
                     (now - timedelta(hours=25), 100.0), (now + timedelta(minutes=1), 100.0)]
    units = units_in_window(confirmations, now, stock.high_demand_window_hours)
    assert units == 21
    assert dynamically_high_demand(stock, units)
    assert not dynamically_high_demand(stock, 20)  # "above" the threshold
    assert is_high_demand(stock, COLD, recent_confirmed_units=21)


def _figures(oh: int, *versions: str) -> list:
    """Figures of two SKUs at `oh` units, versioned by the given record versions (default: one change)."""
    rows = [parse_inventory_row(inventory_record("T100", "BLK", size, "1" + size, "WH1", oh=oh), InventoryFields())
            for size in ("S", "M")]
    version = FigureVersion.of(versions or ("2026-11-20T15:00:00Z#000001",))
    return list(compute_ats(rows, frozenset({"WH1"}), versions={HOT: version, COLD: version}).values())


def test_plan_routes_3_to_5_fast_for_high_demand_and_batch_for_others() -> None:
    external_id = key_only_external_ids(Catalog())
    assert external_id is not None
    plan = plan_stock(_figures(5), STOCK, external_id, delivered={HOT: 3, COLD: 3})
    lanes = {op.key: op.lane for op in plan.operations}
    assert lanes == {"variant-inventory:T100-BLK---S": "fast", "variant-inventory:T100-BLK---M": "batch"}
    op = plan.operations[0]
    assert op.kind == "variant_inventory"
    assert op.payload == {"external_id": "T100-BLK---S", "inventory_quantity": 5}
    assert op.version == FigureVersion.of(["2026-11-20T15:00:00Z#000001"]).encode()


def test_plan_routes_0_to_5_and_5_to_0_fast_for_every_sku() -> None:
    external_id = key_only_external_ids(Catalog())
    assert external_id is not None
    restock = plan_stock(_figures(5), Stock(), external_id, delivered={HOT: 0, COLD: 0})
    sold_out = plan_stock(_figures(0), Stock(), external_id, delivered={HOT: 5, COLD: 5})
    assert {op.lane for op in restock.operations} == {"fast"}
    assert {op.lane for op in sold_out.operations} == {"fast"}
    assert len(restock.operations) == len(sold_out.operations) == 2


def test_plan_uses_the_dynamic_rule_and_reports_skus_without_a_variant() -> None:
    plan = plan_stock(_figures(5), Stock(), lambda sku, upc: "v-" + upc if sku == HOT else None,
                      delivered={HOT: 3, COLD: 3}, recent_confirmed_units={HOT: 99})
    assert [(op.key, op.lane) for op in plan.operations] == [("variant-inventory:v-1S", "fast")]
    assert [p.record for p in plan.problems] == ["sku:T100-BLK---M"]


def test_key_only_external_ids_needs_a_catalog_lookup_for_style_fields() -> None:
    assert key_only_external_ids(Catalog(variant_external_id="{style_name}-{size_desc}")) is None
    by_upc = key_only_external_ids(Catalog(variant_external_id="shop-{upc}"))
    assert by_upc is not None and by_upc(HOT, "0123") == "shop-0123"


def test_newest_wins_drops_a_bulk_figure_computed_before_a_restock() -> None:
    bulk = _figures(0, "2026-11-20T15:00:00Z#000001")[0]  # computed first, still 0
    restock = _figures(8, "2026-11-20T15:00:30Z#000002")[0]
    # the fast restock is delivered first ...
    assert newest_wins(None, restock.version.encode())
    # ... then the slow bulk update arrives at send time: dropped, Klaviyo keeps 8
    assert not newest_wins(restock.version.encode(), bulk.version.encode())
    assert newest_wins(bulk.version.encode(), restock.version.encode())


def test_newest_wins_orders_same_second_changes_by_sequence_and_refuses_equal_or_unversioned() -> None:
    first = _figures(2, "2026-11-20T15:00:00Z#000001")[0].version.encode()
    second = _figures(3, "2026-11-20T15:00:00Z#000002")[0].version.encode()
    assert newest_wins(first, second)
    assert not newest_wins(second, first)
    assert not newest_wins(first, first)
    assert not newest_wins(first, None)
    assert newest_wins("garbage", first)
    with pytest.raises(ValueError, match="not a stock version"):
        newest_wins(first, "garbage")


def test_every_figure_version_is_newer_than_any_of_the_former_format() -> None:
    former = "9999-12-31T23:59:59~9999-12-31T23:59:59.999999Z"
    oldest = FigureVersion.of(()).encode()
    assert newest_wins(former, oldest)
    assert not newest_wins(oldest, former)


def test_merge_keeps_the_newest_figure_not_the_last_arrival() -> None:
    v1, v2, v3 = (FigureVersion.of([f"2026-11-20T15:00:0{n}Z#000001"]).encode() for n in (0, 5, 9))
    held = merge(None, "v", 4, v2, now=100.0)
    held = merge(held, "v", 9, v1, now=101.0)  # older figure arriving late: figure kept, clock restarted
    assert (held.quantity, held.version, held.first_seen, held.last_seen) == (4, v2, 100.0, 101.0)
    held = merge(held, "v", 6, v3, now=102.0)
    assert held.quantity == 6


def test_due_emits_after_a_quiet_period_or_the_max_wait() -> None:
    flapping = PendingFigure("a", 1, "v", first_seen=0.0, last_seen=119.0)
    quiet = PendingFigure("b", 1, "v", first_seen=90.0, last_seen=90.0)
    fresh = PendingFigure("c", 1, "v", first_seen=110.0, last_seen=110.0)
    emitted = due([flapping, quiet, fresh], now=120.0, debounce_seconds=30)
    assert [f.external_id for f in emitted] == ["a", "b"]
    assert [f.external_id for f in due([flapping, quiet, fresh], 120.0, 30, max_wait_seconds=1000)] == ["b"]
