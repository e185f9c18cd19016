"""Available-to-sell: the formula and its edge cases, sellable warehouses, versions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from config.mapping import InventoryFields, Stock
from sync.catalog.records import RecordError, SkuKey
from sync.stock.ats import (
    StockConfigError,
    check_formula,
    compute_ats,
    parse_inventory_row,
    sellable_warehouses,
    stored_figure,
)
from sync.stock.rows import Versioned
from sync.stock.versions import FigureVersion
from tests.unit.sync.stock.conftest import LOCATIONS, inventory_record, sample_inventory

FIELDS = InventoryFields()
SELLABLE = frozenset({"WH1", "WH2"})
BLK_S = SkuKey("T100", "BLK", "", "", "S")


def ats(records: list[dict], sellable: frozenset[str] = SELLABLE, **kw: object) -> dict[SkuKey, int]:
    rows = [parse_inventory_row(r, FIELDS) for r in records]
    return {sku: f.quantity for sku, f in compute_ats(rows, sellable, **kw).items()}  # type: ignore[arg-type]


def rec(location: str, **kw: int) -> dict:
    return inventory_record("T100", "BLK", "S", "11", location, **kw)  # type: ignore[arg-type]


def test_default_formula_is_avail_minus_open_summed_over_sellable_warehouses() -> None:
    # WH1: 10 on hand - 2 picked - 3 open = 5; WH2: 4 - 0 - 1 = 3; QC (not sellable): 50 ignored
    assert ats(sample_inventory())[BLK_S] == 8


def test_picked_is_not_subtracted_twice() -> None:
    # qty_avail already excludes picked units; subtracting qty_pick again would give 1
    assert ats([rec("WH1", oh=10, pick=4, open_qty=2)])[BLK_S] == 4


def test_available_derived_from_on_hand_minus_picked_when_the_row_lacks_it() -> None:
    record = rec("WH1", oh=10, pick=4, open_qty=2)
    record["qty_avail"] = None
    assert ats([record])[BLK_S] == 4


def test_fully_picked_or_reserved_stock_is_zero_although_on_hand_is_positive() -> None:
    assert ats([rec("WH1", oh=7, pick=7)])[BLK_S] == 0
    assert ats([rec("WH1", oh=7, pick=2, open_qty=5)])[BLK_S] == 0


def test_negative_buckets_offset_other_warehouses_and_the_total_is_floored_at_zero() -> None:
    oversold = rec("WH2", oh=0, open_qty=4)  # WH2 owes 4 units
    assert ats([rec("WH1", oh=10), oversold])[BLK_S] == 6  # floored per warehouse would claim 10
    assert ats([rec("WH1", oh=3), oversold])[BLK_S] == 0  # never negative
    adjusted = rec("WH1", oh=-2)  # a negative adjustment
    assert ats([adjusted])[BLK_S] == 0


def test_sku_missing_in_a_warehouse_counts_zero_there_and_unknown_skus_are_zero() -> None:
    only_wh2 = ats([rec("WH2", oh=5)])
    assert only_wh2[BLK_S] == 5
    other = SkuKey("T100", "BLK", "", "", "XL")
    assert ats([rec("WH2", oh=5)], skus=[other])[other] == 0


def test_non_sellable_warehouses_are_ignored_even_when_they_hold_all_the_stock() -> None:
    assert ats([rec("QC", oh=500), rec("RTN", oh=20)])[BLK_S] == 0


def test_style_with_a_new_size_added_later_gets_its_own_figure() -> None:
    first = [rec("WH1", oh=5)]
    before = ats(first)
    new_size = inventory_record("T100", "BLK", "XXL", "19", "WH1", oh=2, last_mod="2026-11-21 08:00:00")
    after = ats([*first, new_size])
    assert before == {BLK_S: 5}
    assert after == {BLK_S: 5, SkuKey("T100", "BLK", "", "", "XXL"): 2}


def test_a_row_read_twice_counts_once_and_the_newest_row_wins() -> None:
    old = rec("WH1", oh=5)
    newer = {**rec("WH1", oh=9), "last_mod": "2026-11-20 10:00:01"}
    assert ats([old, old])[BLK_S] == 5
    assert ats([newer, old])[BLK_S] == 9


def test_direct_ats_field_when_configured() -> None:
    fields = InventoryFields(ats="qty_ats")
    record = {**rec("WH1", oh=10), "qty_ats": 3}
    other = {**rec("WH2", oh=1), "qty_ats": -1}
    rows = [parse_inventory_row(record, fields), parse_inventory_row(other, fields)]
    figures = compute_ats(rows, SELLABLE, formula="direct_ats")
    assert figures[BLK_S].quantity == 2
    with pytest.raises(StockConfigError, match="fields.inventory.ats"):
        check_formula("direct_ats", InventoryFields())


def test_fractional_quantities_round_down() -> None:
    assert ats([{**rec("WH1", oh=0), "qty_avail": "2.75"}])[BLK_S] == 2


def test_sellable_warehouses_from_config_or_location_flags() -> None:
    assert sellable_warehouses(Stock(sellable_warehouses=("WH9",)), LOCATIONS) == {"WH9"}
    assert sellable_warehouses(Stock(), LOCATIONS) == {"WH1", "WH2"}
    with pytest.raises(StockConfigError, match="no sellable warehouse"):
        sellable_warehouses(Stock(), [{"location": "QC", "sellable": "N"}])


def test_bad_inventory_rows_raise_record_errors_naming_the_row() -> None:
    with pytest.raises(RecordError, match=r"inventory:T100-BLK---S@WH1: qty_open: expected a number"):
        parse_inventory_row({**rec("WH1", oh=1), "qty_open": "lots"}, FIELDS)
    with pytest.raises(RecordError, match="no warehouse"):
        parse_inventory_row({**rec("WH1", oh=1), "location": ""}, FIELDS)


def test_a_stored_figure_is_versioned_by_every_row_sellable_or_not_and_every_location() -> None:
    records = [r for r in sample_inventory() if (r["style"], r["color_code"], r["size_desc"]) == ("T100", "BLK", "S")]
    versions = {"WH1": "2026-11-20T15:00:00Z#000001", "WH2": "2026-11-20T15:05:00Z#000002",
                "QC": "2026-11-20T15:07:00Z#000001"}
    rows = [Versioned(r, versions[r["location"]]) for r in records]
    locations = [Versioned(loc, "2026-11-20T09:00:00Z#000001") for loc in LOCATIONS]
    figure = stored_figure(rows, locations, SELLABLE, FIELDS)
    assert figure is not None and figure.sku == BLK_S and figure.quantity == 8
    assert figure.by_warehouse == {"WH1": Decimal(5), "WH2": Decimal(3)}
    # QC is not sellable, yet its row is an input of the figure: the newest version is its own
    expected = FigureVersion.of([*versions.values(), *["2026-11-20T09:00:00Z#000001"] * 3])
    assert figure.version == expected and expected.newest == "2026-11-20T15:07:00Z#000001"
    assert stored_figure([], locations, SELLABLE, FIELDS) is None


def test_the_upc_comes_from_any_warehouse_row() -> None:
    no_upc = {**rec("WH1", oh=2), "upc": ""}
    rows = [parse_inventory_row(no_upc, FIELDS), parse_inventory_row(rec("QC", oh=1), FIELDS)]
    assert compute_ats(rows, SELLABLE)[BLK_S].upc == "11"
