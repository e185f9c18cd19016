"""Record keys carry no ERP padding: a code served padded (an IBM i CHAR column) and the same code unpadded are
one record - for the exception register, the ledger and the dead letters alike."""

from __future__ import annotations

import pytest

from sync.operations import Operation
from sync.record_keys import clean_record_key, record_key


@pytest.mark.parametrize(("padded", "plain"), [("C0000042   ", "C0000042"), ("  100466", "100466"), (42, "42")])
def test_padded_and_unpadded_erp_values_make_the_same_key(padded: object, plain: str) -> None:
    assert record_key("customer", padded) == record_key("customer", plain) == f"customer:{str(plain).strip()}"


def test_no_value_is_a_question_mark() -> None:
    assert record_key("customer", None) == record_key("customer", "    ") == "customer:?"


@pytest.mark.parametrize(("stored", "clean"), [
    ("customer:C0000042    ", "customer:C0000042"),
    ("order:100466   /line:3", "order:100466/line:3"),
    ("inventory:STYLE-01    @WH1  ", "inventory:STYLE-01@WH1"),
    ("style:ABC        :sku", "style:ABC:sku"),
    ("event:Placed Order:SO1", "event:Placed Order:SO1"),  # a space inside a part stays
])
def test_a_stored_key_is_cleaned_around_its_separators(stored: str, clean: str) -> None:
    assert clean_record_key(stored) == clean


def test_an_operations_record_is_made_without_padding() -> None:
    padded = Operation(kind="profile_upsert", key="profile:C0000042:full", payload={}, record="customer:C0000042  ")
    plain = Operation(kind="profile_upsert", key="profile:C0000042:full", payload={}, record="customer:C0000042")
    assert padded.record == plain.record == "customer:C0000042"
    assert Operation(kind="profile_upsert", key="k", payload={}).record is None
