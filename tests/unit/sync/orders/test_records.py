"""Parsing ERP records through the mapping: typed values, precise problems, tenant-local times."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from config.mapping import LineFields, Mapping, OrderFields
from sync.localtime import LocalTimeError, parse_local
from sync.orders.records import (
    DocumentLine,
    InvalidRecord,
    parse_credit_memo,
    parse_order,
    parse_order_documents,
    parse_pick,
)
from sync.orders.skus import _fill
from sync.orders.status import OrderStatus
from tests.support.orders import ErpOrder

MAPPING = Mapping()


def problems_of(raw: dict, parse=parse_order, mapping: Mapping = MAPPING) -> set[tuple[str, str]]:
    with pytest.raises(InvalidRecord) as caught:
        parse(raw, mapping)
    return {(p.record_key, p.field) for p in caught.value.problems}


def test_order_parses_to_typed_header_with_lines_and_addresses() -> None:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    order = parse_order(erp.raw_order(), MAPPING)
    assert order.number == "SO1001" and order.customer == "C1001"
    assert order.status is OrderStatus.CONFIRMED
    assert order.confirmed == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 09:30 EST
    assert [line.line_seq for line in order.lines] == ["1", "2"]
    assert order.lines[0].price == Decimal("50.00") and order.lines[0].qty == 2
    assert order.bill_to is not None and order.bill_to.email == "ann@example.com"
    assert order.tax == Decimal("8.00")


def test_every_problem_of_a_record_is_reported_with_record_and_field() -> None:
    raw = ErpOrder(MAPPING).raw_order()
    raw["ord_status"] = "Z"
    raw["ord_date"] = "2026-02-30 10:00:00"
    raw["tax_amt"] = "-1"
    raw["orderdetail"]["rows"][0]["ord_qty"] = -2
    raw["orderdetail"]["rows"][1]["price"] = "abc"
    assert problems_of(raw) == {
        ("order:SO1001", "ord_status"),
        ("order:SO1001", "ord_date"),
        ("order:SO1001", "tax_amt"),
        ("order:SO1001/line:1", "ord_qty"),
        ("order:SO1001/line:2", "price"),
    }


def test_an_unknown_status_is_the_records_problem_and_once_per_value_the_mappings() -> None:
    raw = ErpOrder(MAPPING).raw_order()
    raw["ord_status"] = "Q"
    with pytest.raises(InvalidRecord) as caught:
        parse_order(raw, MAPPING)
    (problem,) = caught.value.problems
    assert problem.type == "invalid_record" and "'Q'" in problem.reason
    misfit = problem.misfit
    assert misfit is not None and misfit.type == "unknown_status"
    assert misfit.key == "order.ord_status=Q"  # one exception per value, whatever the order
    assert misfit.example == {"record": "order:SO1001", "value": "Q"}
    assert misfit.details["known"] == ["C", "E", "H", "O", "P", "X"] and "lifecycle" in misfit.reason


def test_a_date_no_format_reads_names_the_field_the_value_and_the_formats_tried() -> None:
    mapping = Mapping.model_validate({"tenant": {"date_formats": ["%m/%d/%Y"]}})
    raw = ErpOrder(mapping).raw_order()
    raw["ord_date"] = "28.12.2031"
    with pytest.raises(InvalidRecord) as caught:
        parse_order(raw, mapping)
    (problem,) = caught.value.problems
    misfit = problem.misfit
    assert problem.type == "invalid_record" and misfit is not None and misfit.type == "unparseable_date"
    assert misfit.key == "order.ord_date"  # one exception per field, whatever the value
    assert misfit.example == {"record": "order:SO1001", "value": "28.12.2031"}
    assert misfit.details["formats"] == ["ISO 8601", "%m/%d/%Y"]
    assert "'28.12.2031'" in misfit.reason and "'%m/%d/%Y'" in misfit.reason and "ISO 8601" in misfit.reason


def test_pick_statuses_are_checked_only_when_the_mapping_lists_them() -> None:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1", {1: 1})
    raw = erp.raw_picks()[0]
    raw["pick_status"] = "Z"
    assert parse_pick(raw, MAPPING).shipped is False  # not listed: any status but the shipped one is not shipped
    listed = Mapping.model_validate({"fields": {"pick": {"status_values": ["O", "S", "X"]}}})
    with pytest.raises(InvalidRecord) as caught:
        parse_pick(raw, listed)
    (problem,) = caught.value.problems
    assert problem.misfit is not None and problem.misfit.key == "pick.pick_status=Z"
    assert problem.misfit.details["mapping_key"] == "fields.pick.status_values"
    raw["pick_status"] = "S"
    assert parse_pick(raw, listed).shipped is True


def test_listed_pick_statuses_must_name_the_shipped_one() -> None:
    with pytest.raises(ValueError, match="shipped_value 'S'"):
        Mapping.model_validate({"fields": {"pick": {"status_values": ["O", "X"]}}})


@pytest.mark.parametrize(
    ("field", "value"),
    [("ord_num", ""), ("customer", None), ("ord_date", "")],
)
def test_missing_required_fields(field: str, value: object) -> None:
    raw = ErpOrder(MAPPING).raw_order()
    raw[field] = value
    assert any(f == field for _, f in problems_of(raw))


def test_line_problems_fractional_quantity_overcancel_duplicate_seq() -> None:
    raw = ErpOrder(MAPPING).raw_order()
    rows = raw["orderdetail"]["rows"]
    rows[0]["ord_qty"] = "1.5"
    rows[1]["cancel_qty"] = 5
    rows.append(dict(rows[1], cancel_qty=0))
    found = problems_of(raw)
    assert ("order:SO1001/line:1", "ord_qty") in found
    assert ("order:SO1001/line:2", "cancel_qty") in found
    assert ("order:SO1001/line:2", "line_seq") in found


def test_child_collection_that_is_not_rows_is_a_problem() -> None:
    raw = ErpOrder(MAPPING).raw_order()
    raw["orderdetail"] = {"rows": "nope"}
    assert ("order:SO1001", "orderdetail") in problems_of(raw)


def test_field_names_come_from_the_mapping() -> None:
    renamed = MAPPING.model_copy(update={"fields": MAPPING.fields.model_copy(update={
        "order": OrderFields(number="order_no", status="stat",
                             lines=LineFields(rows="lines", qty="quantity")),
    })})
    raw = ErpOrder(MAPPING).raw_order()
    raw["order_no"] = raw.pop("ord_num")
    raw["stat"] = raw.pop("ord_status")
    raw["lines"] = raw.pop("orderdetail")
    for row in raw["lines"]["rows"]:
        row["quantity"] = row.pop("ord_qty")
    order = parse_order(raw, renamed)
    assert order.number == "SO1001" and order.lines[0].qty == 2
    with pytest.raises(InvalidRecord):
        parse_order(raw, MAPPING)  # the default names are not there any more


def test_pick_shipped_flag_and_memo_magnitudes() -> None:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1")
    erp.pick_unshipped("P2")
    shipped, open_pick = (parse_pick(raw, MAPPING) for raw in erp.raw_picks())
    assert shipped.shipped and shipped.ship_date is not None and not open_pick.shipped
    erp.invoice("I1")
    erp.credit("M1", "-45.50", {1: 1})
    raw = erp.raw_memos()[0]
    raw["memodetail"]["rows"][0]["ret_qty"] = -1
    memo = parse_credit_memo(raw, MAPPING)
    assert memo.total == Decimal("45.50") and memo.lines[0].qty == 1 and memo.restock


def test_documents_keep_good_children_and_report_bad_or_foreign_ones() -> None:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1")
    erp.ship("P2")
    erp.ship("P3")
    picks = erp.raw_picks()
    picks[1]["pick_num"] = "P2"
    picks[1]["ship_date"] = "2026-13-01 00:00:00"
    picks[2]["ord_num"] = "SO9999"
    parsed = parse_order_documents(erp.raw_order(), MAPPING, picks=picks)
    assert parsed.documents is not None
    assert [p.number for p in parsed.documents.picks] == ["P1"]
    found = {(p.record_key, p.field) for p in parsed.problems}
    assert found == {("pick:P2", "ship_date"), ("pick:P3", "ord_num")}


def test_unusable_header_gives_no_documents_and_never_raises() -> None:
    raw = ErpOrder(MAPPING).raw_order()
    raw["ord_status"] = "??"
    parsed = parse_order_documents(raw, MAPPING)
    assert parsed.documents is None and parsed.problems[0].field == "ord_status"


# --- tenant-local times, across daylight saving ------------------------------------------------

NY = "America/New_York"


def test_local_time_to_utc_in_winter_and_summer() -> None:
    assert parse_local("2026-01-15 12:00:00", NY) == datetime(2026, 1, 15, 17, tzinfo=UTC)
    assert parse_local("2026-07-15 12:00:00", NY) == datetime(2026, 7, 15, 16, tzinfo=UTC)
    assert parse_local("2026-07-15", NY) == datetime(2026, 7, 15, 4, tzinfo=UTC)


def test_ambiguous_autumn_time_is_the_first_occurrence() -> None:
    # 2026-11-01 01:30 happens twice in New York; the first is still daylight time (UTC-4).
    assert parse_local("2026-11-01 01:30:00", NY) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_nonexistent_spring_time_moves_past_the_gap() -> None:
    # 2026-03-08 02:30 never happens in New York; read with the pre-gap offset (UTC-5) = 03:30 EDT.
    assert parse_local("2026-03-08 02:30:00", NY) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert parse_local("2026-03-08 03:30:00", NY) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_explicit_offset_is_honoured_and_garbage_refused() -> None:
    assert parse_local("2026-07-15T12:00:00+00:00", NY) == datetime(2026, 7, 15, 12, tzinfo=UTC)
    for bad in ("2026-02-30 10:00:00", "2026-04-31", "yesterday", "2026-01-01 25:00:00"):
        with pytest.raises(LocalTimeError):
            parse_local(bad, NY)


def test_a_document_line_is_flat_so_its_fields_fill_catalog_templates_as_its_dump_does() -> None:
    """`sync.orders.skus._fill` formats templates from a line's own fields (`__dict__`), not `model_dump()`:
    the same only while every field is a plain value. A nested model or an extra field would break that."""
    line = DocumentLine(line_seq="1", style="ST100", color_code="BLK", size_desc="M", price=Decimal("19.90"), qty=2)
    assert dict(line.__dict__) == line.model_dump()
    assert DocumentLine.model_config.get("extra") in (None, "ignore")
    assert _fill("{style}-{color_code}-{size_desc}|{missing}|{style_name}", line) == "ST100-BLK-M||"
