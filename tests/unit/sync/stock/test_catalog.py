"""Catalog transforms: grouping, templates, prices, published, discontinued styles and SKUs."""

from __future__ import annotations

import pytest

from config.mapping import Catalog, Fields, Mapping, StyleFields
from sync.catalog.records import RecordError, SkuKey, parse_style
from sync.catalog.templates import TemplateError
from sync.catalog.transform import CatalogTransform, catalog_operations
from tests.unit.sync.stock.conftest import sample_styles, sku_row, style_record


def by_key(mapping: Mapping = Mapping(), **kw: object) -> dict:
    plan = catalog_operations(sample_styles(), mapping, **kw)  # type: ignore[arg-type]
    return {op.key: op for op in plan.operations}


def test_default_grouping_is_style_and_colour_with_one_variant_per_sku() -> None:
    ats = {SkuKey("T100", "BLK", "", "", "S"): 8}
    ops = by_key(ats=ats)
    item = ops["catalog-item:T100-BLK"]
    assert item.kind == "catalog_item_upsert" and item.lane == "batch"
    assert item.payload == {
        "external_id": "T100-BLK", "title": "Classic Tee - Black", "description": "Classic Tee, cotton",
        "url": "https://shop.example.com/products/T100-BLK", "price": 49.5, "published": True,
        "custom_metadata": {"style": "T100", "brand": "ACME", "division": "01", "season": "FA26"},
        "image_full_url": "https://shop.example.com/images/T100-BLK.jpg",
    }
    assert item.version == "2026-11-20T09:00:00" and item.record == "style:T100"
    variant = ops["catalog-variant:T100-BLK---S"]
    assert variant.payload == {
        "external_id": "T100-BLK---S", "item_external_id": "T100-BLK", "title": "Classic Tee - Black - S",
        "description": "Classic Tee, cotton", "sku": "000000000011", "inventory_quantity": 8,
        "inventory_policy": 1, "price": 49.5, "url": "https://shop.example.com/products/T100-BLK",
        "published": True, "image_full_url": "https://shop.example.com/images/T100-BLK.jpg",
    }
    assert ops["catalog-variant:T100-BLK---M"].payload["inventory_quantity"] == 0  # no figure: 0
    assert ops["catalog-variant:J200-IND-LB-30-32"].payload["item_external_id"] == "J200-IND"


def test_sku_price_overrides_style_price_and_item_price_is_the_lowest() -> None:
    ops = by_key()
    assert ops["catalog-variant:T100-WHT---S"].payload["price"] == 52.0
    assert ops["catalog-item:T100-WHT"].payload["price"] == 52.0


def test_discontinued_skus_and_styles_are_retired_per_mapping() -> None:
    ops = by_key()
    assert ops["catalog-variant:T100-WHT---M"].kind == "catalog_retire"
    assert ops["catalog-variant:T100-WHT---M"].payload == {
        "external_id": "T100-WHT---M", "kind": "variant", "action": "unpublish"}
    assert ops["catalog-item:X300-RED"].payload == {
        "external_id": "X300-RED", "kind": "item", "action": "unpublish"}
    assert ops["catalog-variant:X300-RED---OS"].kind == "catalog_retire"
    deleting = by_key(Mapping(catalog=Catalog(discontinued="delete")))
    assert deleting["catalog-item:X300-RED"].payload["action"] == "delete"


def test_a_colour_whose_skus_are_all_discontinued_retires_its_item() -> None:
    style = style_record("T9", [sku_row("BLK", "S", "1"), sku_row("RED", "S", "2", status="D")])
    ops = {op.key: op.kind for op in catalog_operations([style], Mapping()).operations}
    assert ops == {"catalog-item:T9-BLK": "catalog_item_upsert",
                   "catalog-variant:T9-BLK---S": "catalog_variant_upsert",
                   "catalog-item:T9-RED": "catalog_retire", "catalog-variant:T9-RED---S": "catalog_retire"}


def test_style_grouping_makes_one_item_per_style() -> None:
    mapping = Mapping(catalog=Catalog(item_grouping="style", item_external_id="{style}", title="{style_name}",
                                      url="https://shop/{style}", image_url=""))
    ops = by_key(mapping)
    items = sorted(k for k, op in ops.items() if op.kind == "catalog_item_upsert")
    assert items == ["catalog-item:J200", "catalog-item:T100"]
    assert ops["catalog-variant:T100-WHT---S"].payload["item_external_id"] == "T100"
    assert "image_full_url" not in ops["catalog-item:T100"].payload


def test_unknown_template_fields_are_config_errors_before_any_record() -> None:
    with pytest.raises(TemplateError, match=r"catalog.title.*\{colour\}"):
        CatalogTransform(Mapping(catalog=Catalog(title="{colour}")))
    with pytest.raises(TemplateError, match=r"catalog.item_external_id.*item_grouping='style'"):
        CatalogTransform(Mapping(catalog=Catalog(item_grouping="style")))  # default id names color_code
    with pytest.raises(TemplateError, match="positional"):
        CatalogTransform(Mapping(catalog=Catalog(url="https://x/{}")))
    with pytest.raises(TemplateError, match="not a valid template"):
        CatalogTransform(Mapping(catalog=Catalog(url="https://x/{style")))


def test_raw_fields_in_templates_and_their_absence_is_a_record_problem() -> None:
    mapping = Mapping(catalog=Catalog(variant_external_id="shopify-{raw[shop_variant]}"))
    good = style_record("T1", [{**sku_row("BLK", "S", "1"), "shop_variant": "4711"}])
    bad = style_record("T2", [sku_row("BLK", "S", "2")])
    plan = catalog_operations([good, bad], mapping)
    assert "catalog-variant:shopify-4711" in {op.key for op in plan.operations}
    assert [p.record for p in plan.problems] == ["style:T2"]
    assert "shop_variant" in plan.problems[0].reason


def test_sku_falls_back_to_the_variant_id_without_upc_and_field_names_are_configuration() -> None:
    fields = Fields(style=StyleFields(name="descr1", sku_size="sz", sku_upc="gtin"))
    raw = style_record("T5", [{"color_code": "BLK", "sz": "L", "gtin": "", "color_name": "Black"}])
    raw["descr1"] = "Renamed Name"
    ops = {op.key: op for op in catalog_operations([raw], Mapping(fields=fields)).operations}
    variant = ops["catalog-variant:T5-BLK---L"].payload
    assert variant["sku"] == "T5-BLK---L"
    assert variant["title"] == "Renamed Name - Black - L"


def test_bad_records_become_problems_and_the_rest_goes_on() -> None:
    no_price = style_record("T6", [sku_row("BLK", "S", "1", price=None)], price=None)
    broken = [{"style": ""}, "not a record", style_record("T7", [sku_row("BLK", "S", "1", price="abc")])]  # type: ignore[arg-type]
    plan = catalog_operations([*broken, no_price, *sample_styles()], Mapping())
    reasons = {p.record: p.reason for p in plan.problems}
    assert set(reasons) == {"style:?", "style:T7", "style:T6:T6-BLK---S"}
    assert "no price" in reasons["style:T6:T6-BLK---S"]
    assert "catalog-item:T100-BLK" in {op.key for op in plan.operations}


def test_duplicate_skus_in_a_style_are_refused() -> None:
    with pytest.raises(RecordError, match="appears twice"):
        parse_style(style_record("T8", [sku_row("BLK", "S", "1"), sku_row("BLK", "S", "2")]), StyleFields())


def test_new_sizes_added_later_add_variants_without_touching_the_others() -> None:
    before = style_record("T3", [sku_row("BLK", "S", "1")])
    after = style_record("T3", [sku_row("BLK", "S", "1"), sku_row("BLK", "XL", "2")],
                         last_mod="2026-11-21 09:00:00")
    old = {op.key: op.payload for op in catalog_operations([before], Mapping()).operations}
    new = {op.key: op.payload for op in catalog_operations([after], Mapping()).operations}
    assert set(new) - set(old) == {"catalog-variant:T3-BLK---XL"}
    assert all(new[k] == v for k, v in old.items())


def test_inventory_policy_comes_from_the_mapping() -> None:
    ops = by_key(Mapping(catalog=Catalog(inventory_policy=0)))
    assert ops["catalog-variant:T100-BLK---S"].payload["inventory_policy"] == 0


def test_style_statuses_are_checked_only_when_the_mapping_lists_them() -> None:
    raw = style_record("T100", [sku_row("BLK", "S", "1"), sku_row("BLK", "M", "2", status="Q")], status="Z")
    assert parse_style(raw, StyleFields()).skus[1].status == "Q"  # not listed: any status not discontinued is active
    listed = Mapping(fields=Fields(style=StyleFields(status_values=("A",))))
    plan = catalog_operations([raw, style_record("T200", [sku_row("RED", "S", "3", status="D")])], listed)
    (problem,) = plan.problems  # the style is left out of the catalog; the other goes (a D SKU is known)
    assert problem.record == "style:T100" and {op.record for op in plan.operations} == {"style:T200"}
    assert [(m.type, m.key, m.example) for m in problem.misfits] == [
        ("unknown_status", "style.status=Z", {"record": "style:T100", "value": "Z"}),
        ("unknown_status", "style.stylecolorsizes.status=Q", {"record": "style:T100", "value": "Q"}),
    ]
