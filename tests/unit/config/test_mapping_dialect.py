"""The tenant-dialect keys of the mapping (docs/configuration.md, "Tenant dialects"): each is read from a file,
and each wrong value is refused naming the file and the key."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from config.mapping import (
    FALLBACKS,
    REQUIRED_FIELDS,
    US_STAMP_FORMATS,
    Mapping,
    MappingError,
    Predicate,
    load_mapping,
)
from scripts.gen_mapping_example import walk


def loaded(tmp_path: Path, text: str) -> Mapping:
    path = tmp_path / "tenant.toml"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path)


def refused(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "tenant.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: key '") for line in lines), lines
    return [line.removeprefix(f"{path}: ") for line in lines]


def named(lines: list[str], key: str) -> str:
    line = next((ln for ln in lines if ln.startswith(f"key '{key}': ")), None)
    assert line is not None, f"no problem names {key!r}: {lines}"
    return line


# --- dates -------------------------------------------------------------------------------------------------


def test_date_formats_per_resource_come_before_the_tenants(tmp_path: Path) -> None:
    mapping = loaded(tmp_path, '[tenant]\ndate_formats = ["%m/%d/%Y %H:%M:%S", "%m/%d/%Y"]\n'
                               '[resources.creditmemo]\ndate_formats = ["%Y%m%d", "%m/%d/%Y"]\n')
    assert mapping.date_formats("customer") == ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y")
    assert mapping.date_formats("creditmemo") == ("%Y%m%d", "%m/%d/%Y", "%m/%d/%Y %H:%M:%S")


def test_by_default_only_style_and_inventory_read_more_than_iso() -> None:
    mapping = Mapping()
    assert mapping.date_formats("inventory") == US_STAMP_FORMATS == mapping.date_formats("style")
    for resource in ("customer", "order", "pick", "invoice", "creditmemo", "location"):
        assert mapping.date_formats(resource) == ()


@pytest.mark.parametrize(("fmt", "why"), [
    ("%m/%d", "does not hold a whole date"),
    ("%Y-%m", "does not hold a whole date"),
    ("%d/%m/%Y %I:%M", "12-hour %I without %p"),
    ("%Q/%m/%Y", "is not a strptime format"),
    ("  ", "an empty format"),
])
def test_a_date_format_that_cannot_read_a_date_is_refused(tmp_path: Path, fmt: str, why: str) -> None:
    lines = refused(tmp_path, f'[resources.order]\ndate_formats = ["%m/%d/%Y", "{fmt}"]\n')
    assert why in named(lines, "resources.order.date_formats.1")
    lines = refused(tmp_path, f'[tenant]\ndate_formats = ["{fmt}"]\n')
    assert why in named(lines, "tenant.date_formats.0")


# --- absent fields -------------------------------------------------------------------------------------------


def test_fields_with_a_fallback_can_be_absent(tmp_path: Path) -> None:
    mapping = loaded(tmp_path, '[fields.customer]\nstatus = ""\nphone = ""\n[fields.order]\nentered = ""\n'
                               '[fields.creditmemo]\ndate = ""\n[fields.pick]\nship_date = ""\n')
    assert (mapping.fields.customer.status, mapping.fields.customer.phone) == ("", "")
    assert (mapping.fields.order.entered, mapping.fields.creditmemo.date, mapping.fields.pick.ship_date) == ("",) * 3
    assert set(FALLBACKS) == {"fields.customer.status", "fields.order.entered", "fields.creditmemo.date",
                              "fields.pick.ship_date"}


@pytest.mark.parametrize(("table", "name", "key"), [
    ("fields.order", "number", "fields.order.number"),
    ("fields.customer", "email", "fields.customer.email"),
    ("fields.invoice", "date", "fields.invoice.date"),
    ("fields.creditmemo", "total", "fields.creditmemo.total"),
    ("fields.pick.lines", "qty", "fields.pick.lines.qty"),
    ("fields.order.lines", "price", "fields.order.lines.price"),
    ("fields.inventory", "warehouse", "fields.inventory.warehouse"),
    ("resources.order", "last_mod", "resources.order.last_mod"),
    ("fields.customer.addresses", "addr_type", "fields.customer.addresses.addr_type"),
])
def test_a_required_field_declared_absent_is_refused_naming_it(tmp_path: Path, table: str, name: str,
                                                                key: str) -> None:
    line = named(refused(tmp_path, f'[{table}]\n{name} = ""\n'), key)
    assert "cannot be absent" in line


def test_a_memo_line_may_go_without_a_price_and_flat_addresses_without_rows(tmp_path: Path) -> None:
    mapping = loaded(tmp_path, '[fields.creditmemo.lines]\nprice = ""\n'
                               '[fields.customer.addresses]\nlayout = "flat"\nrows = ""\naddr_type = ""\n')
    assert mapping.fields.creditmemo.lines.price == "" and mapping.fields.customer.addresses.rows == ""


def test_every_problem_of_the_kind_is_listed(tmp_path: Path) -> None:
    lines = refused(tmp_path, '[fields.order]\nnumber = ""\ncustomer = ""\n[fields.pick]\norder = ""\n')
    for key in ("fields.order.number", "fields.order.customer", "fields.pick.order"):
        named(lines, key)


def test_a_date_read_from_last_mod_is_refused_pointing_at_absence(tmp_path: Path) -> None:
    line = named(refused(tmp_path, '[fields.order]\nentered = "last_mod"\n'), "fields.order.entered")
    assert "change fingerprint" in line and 'declare the field absent ("")' in line
    assert "the confirmation date" in line  # the fallback it would get
    # with the resource's own last-modified field renamed, the same name is an ordinary field
    mapping = loaded(tmp_path, '[resources.order]\nlast_mod = "chg_ts"\n[fields.order]\nentered = "last_mod"\n')
    assert mapping.fields.order.entered == "last_mod"
    named(refused(tmp_path, '[resources.creditmemo]\nlast_mod = "upd"\n[fields.creditmemo]\ndate = "upd"\n'),
          "fields.creditmemo.date")


def test_status_absent_needs_an_active_code(tmp_path: Path) -> None:
    line = named(refused(tmp_path, '[fields.customer]\nstatus = ""\n[customer_status]\nactive = []\n'),
                 "customer_status.active")
    assert "fields.customer.status is absent" in line


def test_the_required_list_names_real_keys() -> None:
    keys = [key.dotted for key in walk(Mapping()) if not key.is_section]
    for pattern in REQUIRED_FIELDS:
        assert any(fnmatchcase(key, pattern) for key in keys), pattern


# --- predicates ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("toml", "text"), [
    ('{ field = "ship_date", present = true }', "ship_date present"),
    ('{ field = "ship_date", absent = true }', "ship_date absent"),
    ('{ field = "pick_status", equals = "S" }', "pick_status = 'S'"),
    ('{ field = "pick_status", in = ["S", "C"] }', "pick_status in ['S', 'C']"),
])
def test_shipped_when_takes_each_test(tmp_path: Path, toml: str, text: str) -> None:
    shipped = loaded(tmp_path, f"[fields.pick]\nshipped_when = {toml}\n").fields.pick.shipped_when
    assert isinstance(shipped, Predicate) and shipped.text == text


def test_shipped_when_is_unset_by_default() -> None:
    assert Mapping().fields.pick.shipped_when is None and Mapping().fields.pick.shipped_value == "S"


@pytest.mark.parametrize(("toml", "key", "why"), [
    ('{ field = "ship_date" }', "fields.pick.shipped_when", "exactly one of"),
    ('{ field = "pick_status", equals = "S", in = ["C"] }', "fields.pick.shipped_when", "got equals, in"),
    ('{ field = "ship_date", present = false }', "fields.pick.shipped_when.present", "absent = true"),
    ('{ field = "", present = true }', "fields.pick.shipped_when.field", "needs the field"),
    ('{ field = "ship_date", present = true, when = 1 }', "fields.pick.shipped_when.when", "unknown key"),
    ('{ present = true }', "fields.pick.shipped_when.field", "Field required"),
])
def test_a_wrong_predicate_is_refused_naming_the_key(tmp_path: Path, toml: str, key: str, why: str) -> None:
    assert why in named(refused(tmp_path, f"[fields.pick]\nshipped_when = {toml}\n"), key)


# --- addresses -----------------------------------------------------------------------------------------------


def test_addresses_are_rows_by_default_and_may_be_flat(tmp_path: Path) -> None:
    assert Mapping().fields.customer.addresses.layout == "rows"
    addresses = loaded(tmp_path, '[fields.order.addresses]\nlayout = "flat"\nbill_to_prefix = "b_"\n'
                                 'ship_to_prefix = "s_"\nzipcode = "zip"\n').fields.order.addresses
    assert (addresses.layout, addresses.bill_to_prefix, addresses.ship_to_prefix, addresses.zipcode) == (
        "flat", "b_", "s_", "zip")
    assert addresses.rows == "orderaddress"  # the rest keeps its defaults


def test_an_unknown_layout_is_refused(tmp_path: Path) -> None:
    assert "'rows' or 'flat'" in named(refused(tmp_path, '[fields.customer.addresses]\nlayout = "inline"\n'),
                                       "fields.customer.addresses.layout")


# --- normalisers ---------------------------------------------------------------------------------------------


def test_normalisers_per_field_key_of_any_table(tmp_path: Path) -> None:
    mapping = loaded(tmp_path, '[fields.customer]\nnormalise = { code = ["trim", "strip_leading_zeros"] }\n'
                               '[fields.order.lines.normalise]\nstyle = ["upper"]\n'
                               '[fields.order.addresses.normalise]\ncountry = ["trim", "upper"]\n')
    assert mapping.fields.customer.normalise == {"code": ("trim", "strip_leading_zeros")}
    assert mapping.fields.order.lines.normalise == {"style": ("upper",)}
    assert mapping.fields.order.addresses.normalise == {"country": ("trim", "upper")}
    assert Mapping().fields.order.normalise == {}


def test_a_normaliser_of_no_field_or_of_no_kind_is_refused(tmp_path: Path) -> None:
    line = named(refused(tmp_path, '[fields.customer.normalise]\nemial = ["lower"]\n'),
                 "fields.customer.normalise.emial")
    assert "not a field key of this table" in line and "email" in line
    line = named(refused(tmp_path, '[fields.customer.normalise]\nyes_values = ["lower"]\n'),
                 "fields.customer.normalise.yes_values")
    line = named(refused(tmp_path, '[fields.customer.normalise]\ncode = ["capitalise"]\n'),
                 "fields.customer.normalise.code.0")
    assert "'trim', 'upper', 'lower' or 'strip_leading_zeros'" in line


# --- empty resources and envelopes ---------------------------------------------------------------------------


def test_not_found_and_envelope_per_resource(tmp_path: Path) -> None:
    mapping = loaded(tmp_path, '[resources.creditmemo]\nnot_found = "empty"\n[resources.location]\n'
                               'envelope = "result.items"\n')
    assert mapping.resources.creditmemo.not_found == "empty" and mapping.resources.order.not_found == "error"
    assert mapping.resources.location.envelope == "result.items" and mapping.resources.order.envelope == ""
    assert mapping.resources.creditmemo.path == "creditmemo"  # the table's other keys keep their defaults
    assert "'error' or 'empty'" in named(refused(tmp_path, '[resources.order]\nnot_found = "ignore"\n'),
                                         "resources.order.not_found")
