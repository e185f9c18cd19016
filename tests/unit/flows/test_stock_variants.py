"""Stock's variant ids against the catalog's (flows/stock_variants.py, sync/stock/variant_ids.py) on a real private
Redis: a wrong variant-id template is ONE variant_id_mismatch exception with examples - at once when the catalog
holds a SKU under another id, after `variant_check_skus` SKUs of read styles when none matches - and a few new
SKUs ahead of their style's next read raise nothing but their per-SKU warning."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.mapping import Catalog, Fields, InventoryFields, Mapping
from config.settings import Settings
from connectors.klaviyo.limiter import FleetRateLimiter
from delivery.runtime import Runtime
from flows import stock_variants
from flows.stock_variants import check_variant_ids, recheck_unjudged
from state.factory import Stores
from sync.catalog.records import SkuKey
from sync.catalog.transform import catalog_operations
from sync.stock.variant_ids import Sighting, checked_configuration
from tests.unit.sync.stock.conftest import sku_row, style_record

MAPPING = Mapping()
BY_UPC = Mapping(catalog=Catalog(variant_external_id="{upc}"))


@pytest.fixture
def rt(redis_client: Any, redis_url: str) -> Runtime:
    stock_variants.PROVEN.clear()  # a process-wide cache: every test starts unproven
    settings = Settings(redis_url=redis_url, key_prefix="vid", variant_check_skus=3)
    return Runtime(stores=Stores(settings, MAPPING, redis_client), limiter=FleetRateLimiter(redis_client, "vid"))


def sku(style: str, color: str, size: str) -> SkuKey:
    return SkuKey(style, color, "", "", size)


def read_catalog(rt: Runtime, mapping: Mapping, styles: list[dict[str, Any]]) -> dict[str, str]:
    """What ingest_styles remembers of these styles; returns the catalog's variant ids by SKU text."""
    plan = catalog_operations(styles, mapping)
    rt.stores.stock.remember_catalog(plan.variant_ids, plan.styles)
    return plan.variant_ids


def styles() -> list[dict[str, Any]]:
    return [style_record("T100", [sku_row("BLK", size, f"00000000001{n}") for n, size in enumerate("SML")]
                         + [sku_row("RED", "S", "000000000019", status="D")]),  # retired: still the catalog's
            style_record("T200", [sku_row("BLU", size, f"00000000002{n}") for n, size in enumerate("SML")])]


def exceptions(rt: Runtime, type_: str) -> list[Any]:
    return rt.exceptions.list(type=type_, limit=100)


@pytest.mark.parametrize(("catalog_id", "stock_id", "known", "verdict"), [
    ("T1-BLK---S", "T1-BLK---S", True, "match"),
    ("0123", "123", True, "mismatch"),
    (None, "T1-BLK---XL", True, "unmatched"),
    (None, None, True, "unmatched"),
    (None, "T1-BLK---S", False, "unknown"),
])
def test_a_figures_verdict(catalog_id: str | None, stock_id: str | None, known: bool, verdict: str) -> None:
    assert Sighting(sku("T1", "BLK", "S"), stock_id, catalog_id, known).verdict == verdict


def test_the_configuration_digest_moves_with_the_template_and_the_field_mappings_only() -> None:
    base = checked_configuration(MAPPING)
    assert checked_configuration(Mapping()) == base
    assert checked_configuration(BY_UPC) != base
    assert checked_configuration(Mapping(fields=Fields(inventory=InventoryFields(upc="ean")))) != base
    assert checked_configuration(Mapping(catalog=Catalog(title="{style}"))) == base


def test_the_default_template_matches_and_raises_nothing(rt: Runtime) -> None:
    ids = read_catalog(rt, MAPPING, styles())
    figures = [(sku("T100", "BLK", size), ids[f"T100-BLK---{size}"]) for size in "SML"]
    figures.append((sku("T100", "RED", "S"), "T100-RED---S"))  # a retired variant's stock is no mismatch
    sightings = check_variant_ids(figures, MAPPING, rt.stores.stock, rt)
    assert {s.verdict for s in sightings} == {"match"}
    assert rt.exceptions.list(limit=100) == []


def test_a_sku_the_catalog_holds_under_another_id_raises_one_exception_at_once(rt: Runtime) -> None:
    read_catalog(rt, BY_UPC, styles())  # the catalog's ids: the style's barcodes, 12 digits
    stock = [(sku("T100", "BLK", size), f"{n}") for n, size in enumerate("SML")]  # stock's: without the zeros
    check_variant_ids(stock[:1], BY_UPC, rt.stores.stock, rt)
    (row,) = exceptions(rt, "variant_id_mismatch")
    assert row.record_key == "catalog.variant_external_id" and row.owner == "operations"
    assert "SKU T100-BLK---S is variant '000000000010' in the catalog but stock computes it as '0'" in row.reason
    assert "'{upc}'" in row.reason
    check_variant_ids(stock[1:], BY_UPC, rt.stores.stock, rt)
    (row,) = exceptions(rt, "variant_id_mismatch")  # still one row, counted, with examples
    assert row.count == 2 and [e["sku"] for e in row.details["examples"]] == [
        "T100-BLK---S", "T100-BLK---M", "T100-BLK---L"]
    assert exceptions(rt, "catalog_error") == []


def test_skus_of_read_styles_that_never_match_raise_it_after_the_threshold_once(rt: Runtime) -> None:
    read_catalog(rt, MAPPING, styles())
    # the inventory's size field holds size codes: every stock SKU key misses the catalog's
    stock = [(sku(style, color, code), f"{style}-{color}---{code}") for style, color in (("T100", "BLK"),
                                                                                       ("T200", "BLU"))
             for code in ("01", "02")]
    check_variant_ids(stock[:2], MAPPING, rt.stores.stock, rt)
    assert exceptions(rt, "variant_id_mismatch") == []  # 2 < 3: could be new SKUs
    check_variant_ids(stock[2:], MAPPING, rt.stores.stock, rt)
    (row,) = exceptions(rt, "variant_id_mismatch")
    assert "3 stock SKUs of styles the catalog has read match none of its variants" in row.reason
    assert len(row.details["examples"]) == 3
    # a SKU of a style the catalog has not read is nothing to judge by
    check_variant_ids([(sku("Z900", "BLK", "S"), "Z900-BLK---S")], MAPPING, rt.stores.stock, rt)
    assert exceptions(rt, "variant_id_mismatch")[0].count == 1
    check_variant_ids(stock[3:], MAPPING, rt.stores.stock, rt)  # seen again: the same row counts up
    (row,) = exceptions(rt, "variant_id_mismatch")
    assert row.count == 2 and len(row.details["examples"]) == 3


def test_new_skus_ahead_of_their_style_raise_no_mismatch_once_a_sku_matched(rt: Runtime) -> None:
    ids = read_catalog(rt, MAPPING, styles())
    check_variant_ids([(sku("T100", "BLK", "S"), ids["T100-BLK---S"])], MAPPING, rt.stores.stock, rt)
    new = [(sku("T100", "BLK", size), f"T100-BLK---{size}") for size in ("XL", "XXL", "3XL", "4XL")]
    check_variant_ids(new, MAPPING, rt.stores.stock, rt)
    assert exceptions(rt, "variant_id_mismatch") == []


def test_stock_without_a_variant_id_keeps_its_per_sku_warning_until_the_threshold(rt: Runtime) -> None:
    read_catalog(rt, MAPPING, styles())
    check_variant_ids([(sku("Z900", "BLK", "S"), None)], MAPPING, rt.stores.stock, rt)  # style not read yet
    (warning,) = exceptions(rt, "catalog_error")
    assert warning.record_key == "sku:Z900-BLK---S" and "not read yet" in warning.reason
    check_variant_ids([(sku("T100", "BLK", "01"), None)], MAPPING, rt.stores.stock, rt)  # read without it
    assert [w.reason for w in exceptions(rt, "catalog_error") if w.record_key == "sku:T100-BLK---01"] == [
        stock_variants.READ_WITHOUT]
    check_variant_ids([(sku("T100", "BLK", code), None) for code in ("02", "03", "04")], MAPPING,
                      rt.stores.stock, rt)
    assert len(exceptions(rt, "catalog_error")) == 2  # the threshold reached: one exception, no more warnings
    assert len(exceptions(rt, "variant_id_mismatch")) == 1


def test_stock_read_before_its_styles_is_judged_once_the_catalog_reads_them(rt: Runtime) -> None:
    stock = [(sku("T100", "BLK", size), f"{n}") for n, size in enumerate("SML")]  # UPC-A without the zeros
    stock.append((sku("Z900", "BLK", "S"), "99"))  # a style the catalog never reads here
    assert {s.verdict for s in check_variant_ids(stock, BY_UPC, rt.stores.stock, rt)} == {"unknown"}
    assert exceptions(rt, "variant_id_mismatch") == []
    assert {s.verdict for s in recheck_unjudged(BY_UPC, rt.stores.stock, rt)} == {"unknown"}  # nothing read yet
    assert exceptions(rt, "catalog_error") == []  # a key-only template found ids: no per-SKU warning
    read_catalog(rt, BY_UPC, styles())  # what ingest_styles does, then it rechecks
    verdicts = {s.sku.style: s.verdict for s in recheck_unjudged(BY_UPC, rt.stores.stock, rt)}
    assert verdicts == {"T100": "mismatch", "Z900": "unknown"}
    (row,) = exceptions(rt, "variant_id_mismatch")
    assert sorted(e["sku"] for e in row.details["examples"]) == ["T100-BLK---L", "T100-BLK---M", "T100-BLK---S"]
    digest = checked_configuration(BY_UPC)
    assert [json.loads(e)["key"][0] for e in rt.stores.stock.unjudged(digest)] == ["Z900"]  # judged ones go
