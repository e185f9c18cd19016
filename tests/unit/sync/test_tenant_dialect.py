"""Every parser reads a second tenant dialect by its mapping alone (docs/configuration.md, "Tenant dialects"):
a record written in the dialect - other names, MM/DD/YYYY and DD.MM.YYYY dates, flat addresses, padded and
re-cased codes, fields the tenant does not have - parses to the same typed result as its default-shape twin,
and the fingerprint sees through what the normalisers undo."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from config.mapping import Mapping, load_mapping
from sync.catalog.records import parse_style
from sync.changes import change_version, classify
from sync.customers.planner import plan_customer_changes
from sync.customers.records import parse_customer
from sync.fingerprints import fingerprint, mapped_values
from sync.orders.fallbacks import date_memos, fallbacks_in_use, memos_in_refund_order
from sync.orders.records import parse_credit_memo, parse_invoice, parse_order, parse_order_documents, parse_pick
from sync.stock.ats import parse_inventory_row
from tests.integration.poller.test_changes import customer
from tests.support.dialect import dialect_mapping, in_dialect
from tests.support.orders import ErpOrder
from tests.unit.sync.stock.conftest import inventory_record, sample_inventory, sample_styles

DEFAULT = Mapping()


@pytest.fixture(scope="module")
def dialect(tmp_path_factory: pytest.TempPathFactory) -> Mapping:
    return dialect_mapping(tmp_path_factory.mktemp("dialect"))


def shipped_order() -> ErpOrder:
    """An order through its life; entered = confirmed (the dialect has no entry date: its fallback)."""
    erp = ErpOrder(DEFAULT, number="SO1001", customer="C1001")
    erp.confirm()
    erp.entered = erp.confirmed  # type: ignore[assignment]
    erp.ship("P77")
    erp.pick_unshipped("P78")
    erp.invoice("I88")
    erp.credit("M10", "25.00", {1: 1})
    erp.credit("M9", "12.00", {2: 1})
    return erp


# --- customers ---------------------------------------------------------------------------------------------


def test_a_customer_in_the_dialect_parses_as_its_twin(dialect: Mapping) -> None:
    twin = customer(email_optin="Y", email_optin_date="2026-01-03 08:15:00", sms_optin="Y",
                    sms_optin_date="2026-01-04", division="APP", customer="C1001")
    raw = in_dialect(twin, "customer", dialect)
    assert raw["CUSNO"] == "  00C1001 " and raw["CRTDT"] == "01/02/2026 10:00:00" and raw["BILLCITY"] == "New York"
    assert raw["SHIPADR1"] == "2 Side St" and "STATUS" not in raw and raw["DIV"] == "app"
    ours, theirs = parse_customer(raw, dialect), parse_customer(twin, DEFAULT)
    assert ours.problems == theirs.problems == []
    assert ours.customer is not None and theirs.customer is not None
    # last_mod is kept as the ERP wrote it, groups go by their ERP names (erp_<field>); the rest is the same
    assert ours.customer.model_dump(exclude={"last_mod", "groups"}) == theirs.customer.model_dump(
        exclude={"last_mod", "groups"})
    assert list(ours.customer.groups.values()) == list(theirs.customer.groups.values()) == ["DTC", "RETAIL"]
    assert ours.customer.status == "A" and ours.customer.active  # no status field: active
    assert ours.customer.bill_to is not None and ours.customer.bill_to.city == "New York"


def test_a_customer_date_no_format_reads_names_the_field_and_the_formats(dialect: Mapping) -> None:
    raw = in_dialect(customer(created="2026-01-02 10:00:00"), "customer", dialect)
    raw["CRTDT"] = "2026.01.02"
    problems = parse_customer(raw, dialect).problems
    assert len(problems) == 1 and "creation date (CRTDT) '2026.01.02'" in problems[0]
    assert "%m/%d/%Y %H:%M:%S" in problems[0]


def test_cosmetic_differences_the_normalisers_undo_are_no_change(dialect: Mapping) -> None:
    raw = in_dialect(customer(customer="C1001"), "customer", dialect)
    first = classify(None, raw, "customer", dialect)
    assert first is not None
    again = {**raw, "CUSNO": "0C1001", "DIV": "App", "CHGTS": "03/03/2026 10:00:00"}
    assert fingerprint(mapped_values("customer", again, dialect)) == first.fingerprint
    moved = {**raw, "BILLCITY": "Boston"}  # a flat address field is a mapped field like any other
    changed = fingerprint(mapped_values("customer", moved, dialect))
    assert changed != first.fingerprint
    assert classify(None, moved, "customer", dialect) is not None


def test_a_deleted_customer_of_the_dialect_is_erased_under_its_read_code_and_email(dialect: Mapping) -> None:
    raw = in_dialect(customer(customer="C1001", email="Ann@Example.com", delete_flag="Y"), "customer", dialect)
    event = classify(None, raw, "customer", dialect)
    assert event is not None and event.kind == "deleted"
    plan = plan_customer_changes([event], dialect)
    assert plan.erase == [("C1001", "7")]  # the code as the profile's external_id, not "  00C1001 "
    (deletion,) = plan.operations
    assert deletion.payload["profile"] == {"email": "ann@example.com"}


def test_last_mod_in_the_dialects_format_makes_the_same_version(dialect: Mapping) -> None:
    read_at = datetime(2026, 3, 9, tzinfo=UTC)
    ours = change_version("03/08/2026 14:05:00", 1, dialect, read_at, resource="order")
    assert ours == change_version("2026-03-08 14:05:00", 1, DEFAULT, read_at, resource="order")
    assert not ours.startswith("0000")


# --- orders and their documents --------------------------------------------------------------------------------


def test_an_order_in_the_dialect_parses_as_its_twin(dialect: Mapping) -> None:
    erp = shipped_order()
    twin = erp.raw_order()
    raw = in_dialect(twin, "order", dialect)
    assert "ORDDT" not in raw and raw["CNFDT"].count("/") == 2 and raw["B_EMAIL"] == "ann@example.com"
    assert raw["ORDDTL"]["rows"][0]["STYLE"] == "  st100 " and raw["ORDNO"] == "  00SO1001 "
    assert parse_order(raw, dialect) == parse_order(twin, DEFAULT)


def test_the_documents_in_the_dialect_parse_as_their_twins(dialect: Mapping) -> None:
    erp = shipped_order()
    picks = [in_dialect(p, "pick", dialect) for p in erp.raw_picks()]
    assert "PICKSTS" not in picks[0] and picks[1]["SHPDT"] == ""  # shipped = a ship date is present
    for ours, theirs in zip(picks, erp.raw_picks(), strict=True):
        assert parse_pick(ours, dialect).model_dump(exclude={"status"}) == parse_pick(theirs, DEFAULT).model_dump(
            exclude={"status"})
    assert [parse_pick(p, dialect).shipped for p in picks] == [True, False]
    (invoice,) = erp.raw_invoices()
    assert parse_invoice(in_dialect(invoice, "invoice", dialect), dialect) == parse_invoice(invoice, DEFAULT)
    for memo in erp.raw_memos():
        ours = parse_credit_memo(in_dialect(memo, "creditmemo", dialect), dialect)
        theirs = parse_credit_memo(memo, DEFAULT)
        assert ours.date is None  # no memo date in the dialect: dated from its last_mod by the fallback
        assert ours == theirs.model_copy(update={"date": None})


def test_memos_without_dates_are_dated_by_their_first_recorded_last_mod_and_ordered_by_number(
        dialect: Mapping) -> None:
    erp = shipped_order()
    parsed = parse_order_documents(
        in_dialect(erp.raw_order(), "order", dialect), dialect,
        [in_dialect(p, "pick", dialect) for p in erp.raw_picks()],
        [in_dialect(i, "invoice", dialect) for i in erp.raw_invoices()],
        [in_dialect(m, "creditmemo", dialect) for m in erp.raw_memos()])
    assert parsed.documents is not None and not parsed.problems
    twin = parse_order_documents(erp.raw_order(), DEFAULT, erp.raw_picks(), erp.raw_invoices(), erp.raw_memos())
    assert twin.documents is not None
    # none recorded: its last_mod now (the twin's memo date, written at the same time); the dialect's picks
    # have no status field (shipped is told by the ship date)
    picks = tuple(p.model_copy(update={"status": ""}) for p in twin.documents.picks)
    assert date_memos(parsed.documents, {}) == twin.documents.model_copy(update={"picks": picks})
    # recorded before: the first recorded stays, whatever last_mod says now
    first = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    dated = date_memos(parsed.documents, {"M10": first})
    assert {m.number: m.date for m in dated.credit_memos}["M10"] == first
    # the order-level refund id goes by memo number (M9 before M10), not by these dates
    assert [m.number for m in memos_in_refund_order(dated.credit_memos, dialect)] == ["M9", "M10"]
    assert [m.number for m in memos_in_refund_order(twin.documents.credit_memos, DEFAULT)] == ["M10", "M9"]
    used = {(f["document"], f["field"]): f["source"] for f in fallbacks_in_use(parsed.documents, dialect,
                                                                                 {"M10": first})}
    assert used[("order:SO1001", "fields.order.entered")].startswith("the confirmation date (CNFDT)")
    assert used[("creditmemo:M10", "fields.creditmemo.date")].startswith("its last_mod as first recorded")
    assert used[("creditmemo:M9", "fields.creditmemo.date")].startswith("its last_mod now")
    assert fallbacks_in_use(twin.documents, DEFAULT) == []


def test_a_confirmed_order_without_any_date_is_refused_when_the_mapping_has_no_entry_date(
        dialect: Mapping) -> None:
    erp = shipped_order()
    raw = in_dialect(erp.raw_order(), "order", dialect)
    raw["CNFDT"] = ""
    parsed = parse_order_documents(raw, dialect)
    assert parsed.documents is None
    assert [(p.field, p.reason.split(":")[0]) for p in parsed.problems] == [("CNFDT", "missing")]
    erp.status = "E"  # only entered: no date needed, none taken from anywhere else
    raw = {**in_dialect(erp.raw_order(), "order", dialect), "CNFDT": ""}
    assert parse_order(raw, dialect).entered is None


def test_shipped_when_each_test(tmp_path: Path) -> None:
    erp = shipped_order()
    (pick, _) = erp.raw_picks()
    cases: list[tuple[str, dict[str, Any], bool]] = [
        ('{ field = "pick_status", equals = "S" }', {}, True),
        ('{ field = "pick_status", in = ["C", "S"] }', {"pick_status": "C"}, True),
        ('{ field = "pick_status", in = ["C", "S"] }', {"pick_status": "O"}, False),
        ('{ field = "ship_date", present = true }', {"pick_status": "O"}, True),
        ('{ field = "ship_date", present = true }', {"ship_date": " "}, False),
        ('{ field = "void_flag", absent = true }', {"void_flag": ""}, True),
        ('{ field = "void_flag", absent = true }', {"void_flag": "Y"}, False),
    ]
    for predicate, change, shipped in cases:
        path = tmp_path / "m.toml"
        path.write_text(f"[fields.pick]\nshipped_when = {predicate}\n", encoding="utf-8")
        assert parse_pick({**pick, **change}, load_mapping(path)).shipped is shipped, (predicate, change)


def test_a_predicate_field_no_other_key_reads_counts_for_change_detection(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[fields.pick]\nshipped_when = { field = "void_flag", absent = true }\n', encoding="utf-8")
    mapping = load_mapping(path)
    (pick, _) = shipped_order().raw_picks()
    assert fingerprint(mapped_values("pick", pick, mapping)) != fingerprint(
        mapped_values("pick", {**pick, "void_flag": "Y"}, mapping))
    # the default mapping's fingerprint of the same pick is what it always was (no key added)
    assert "shipped_when" not in mapped_values("pick", pick, DEFAULT)


# --- catalog and stock -------------------------------------------------------------------------------------------


def test_styles_in_the_dialect_parse_as_their_twins(dialect: Mapping) -> None:
    for twin in sample_styles():
        raw = in_dialect(twin, "style", dialect)
        assert raw["CHGTS"].count(".") == 2 and raw["STYLE"].startswith("  ")
        ours = parse_style(raw, dialect.fields.style, "CHGTS", dialect.date_formats("style"))
        theirs = parse_style(twin, DEFAULT.fields.style)
        assert (ours.style, ours.name, ours.last_mod, ours.skus) == (theirs.style, theirs.name, theirs.last_mod,
                                                                      theirs.skus)


def test_inventory_rows_in_the_dialect_parse_as_their_twins(dialect: Mapping) -> None:
    for twin in sample_inventory():
        raw = in_dialect(twin, "inventory", dialect)
        assert raw["STYLE"].strip() == twin["style"].lower() and raw["WHSE"].startswith("  ")
        ours = parse_inventory_row(raw, dialect.fields.inventory, "CHGTS", dialect.date_formats("inventory"))
        assert ours == parse_inventory_row(twin, DEFAULT.fields.inventory)


def test_the_stock_parser_reads_the_resources_formats_and_still_the_report_shapes() -> None:
    fields = DEFAULT.fields.inventory
    expected = datetime(2026, 11, 20, 10, 0)
    for text in ("2026-11-20 10:00:00", "11/20/2026 10:00:00", "11/20/2026 10:00:00 AM", "11/20/2026 10:00"):
        assert parse_inventory_row(inventory_record("T1", "B", "S", "1", "W", oh=1, last_mod=text), fields).last_mod \
            == expected
    row = inventory_record("T1", "B", "S", "1", "W", oh=1, last_mod="20.11.2026 10:00")
    assert parse_inventory_row(row, fields, "last_mod", ("%d.%m.%Y %H:%M",)).last_mod == expected
