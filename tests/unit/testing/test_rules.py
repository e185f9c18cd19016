"""TenantRules: documented defaults, and the oracle's own reader of a tenant's mapping TOML."""

from pathlib import Path

from testing.oracle import DIALECTS, TenantRules

REPO = Path(__file__).resolve().parents[3]


def test_the_defaults_are_the_documented_ones() -> None:
    rules = TenantRules()
    assert rules.order_types == ("WEB", "RTL") and rules.sales_channels == ("WEB", "POS")
    assert rules.catch_all_customers == ("WEBGUEST",) and rules.dispatch_document == "pick"
    assert rules.metrics[0] == "Placed Order" and rules.aggregate_prefix == "erp_"
    assert DIALECTS["default"].order_lines == "orderdetail"


def test_the_generated_example_mapping_reads_as_the_defaults() -> None:
    rules = TenantRules.from_toml(REPO / "config" / "mapping.example.toml")
    assert rules == TenantRules(timezone="America/New_York")


def test_a_tenant_file_overrides_only_what_it_sets(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[lifecycle]\norder_types = ["WEB"]\ndispatch_document = "invoice"\nuse_storefront_ref = true\n'
        'storefront_sends_placed = ["SHOP"]\n'
        '[metrics]\nplaced_order = "Order Placed"\n[stock]\nsellable_warehouses = ["WH1"]\n'
        '[fields.inventory]\nats = "qty_ats"\n[tenant]\ntimezone = "Europe/London"\n'
    )
    rules = TenantRules.from_toml(mapping)
    assert rules.order_types == ("WEB",) and rules.dispatch_document == "invoice" and rules.use_storefront_ref
    assert rules.storefront_sends_placed == ("SHOP",)
    assert rules.placed_order == "Order Placed" and rules.sellable_warehouses == ("WH1",)
    assert rules.ats_field == "qty_ats" and rules.timezone == "Europe/London"
    assert rules.sales_channels == ("WEB", "POS")  # not set: the default
