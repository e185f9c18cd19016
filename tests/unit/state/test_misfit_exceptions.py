"""Mapping misfits in the exception register (real private Redis): one row per status value or date field, however
many records fail, with a few distinct examples and the count."""

from __future__ import annotations

from config.mapping import ExceptionOwners
from state.exceptions import ExceptionRegister
from sync.misfits import MAX_EXAMPLES, record_misfits, unknown_status, unparseable_date


def test_a_thousand_records_with_one_unknown_status_are_one_row_with_a_few_examples(redis_client) -> None:
    register = ExceptionRegister(redis_client, "t", ExceptionOwners())
    misfits = [unknown_status("order", "ord_status", "Z", f"order:SO{n}", ["O", "C"], "lifecycle")
               for n in range(1000)]
    record_misfits(register, misfits + misfits[:3])  # records read again count, they add no example
    record_misfits(register, [unknown_status("order", "ord_status", "Q", "order:SO7", ["O", "C"], "lifecycle")])
    rows = {r.record_key: r for r in register.list(type="unknown_status")}
    assert set(rows) == {"order.ord_status=Z", "order.ord_status=Q"}
    z = rows["order.ord_status=Z"]
    assert z.owner == "operations" and z.count == 1003
    assert z.details["examples"] == [{"record": f"order:SO{n}", "value": "Z"} for n in range(MAX_EXAMPLES)]
    assert z.details["known"] == ["C", "O"] and z.details["mapping_key"] == "lifecycle"


def test_dates_of_one_field_are_one_row_naming_the_formats_tried(redis_client) -> None:
    register = ExceptionRegister(redis_client, "t", ExceptionOwners())
    formats = ("%m/%d/%Y %H:%M:%S",)
    record_misfits(register, [unparseable_date("invoice", "inv_dt", value, f"invoice:I{n}", formats)
                              for n, value in enumerate(["03/02/2026", "03/02/2026", "12/28/2031"])])
    (row,) = register.list(type="unparseable_date")
    assert row.record_key == "invoice.inv_dt" and row.count == 3 and row.owner == "operations"
    assert [e["value"] for e in row.details["examples"]] == ["03/02/2026", "03/02/2026", "12/28/2031"]
    assert row.details["formats"] == ["ISO 8601", "%m/%d/%Y %H:%M:%S"] and row.details["field"] == "inv_dt"
    assert "'12/28/2031'" in row.reason and "'%m/%d/%Y %H:%M:%S'" in row.reason


def test_details_without_examples_are_replaced_as_before(redis_client) -> None:
    register = ExceptionRegister(redis_client, "t", ExceptionOwners())
    register.record("invalid_record", "order:SO1", "bad", details={"field": "a"})
    rec = register.record("invalid_record", "order:SO1", "bad", details={"field": "b"})
    assert rec.details == {"field": "b"}
