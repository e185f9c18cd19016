"""`check_mapping` on in-memory samples: a small tenant in the default shape, the same tenant in a second dialect
(tests/support/dialect.py writes it from the two mappings alone), and one habit at a time. The verdict, the
mismatches it names, the per-field counts and what the fleet would send all come from the product's parsers and
transforms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.mapping import Mapping
from sync.onboarding.check import RESOURCES, CheckReport, Read, check_mapping
from tests.support.dialect import dialect_mapping, in_dialect
from tests.support.small_tenant import UPC, tenant


def reads(records: dict[str, list[dict[str, Any]]], mapping: Mapping) -> list[Read]:
    return [Read(r, getattr(mapping.resources, r).path, tuple(records[r])) for r in RESOURCES]


def keys(report: CheckReport, *, blocking: bool | None = None) -> set[str]:
    return {m.key for m in report.mismatches if blocking is None or m.blocking == blocking}


def finding(report: CheckReport, key: str) -> Any:
    resource = key.split(".")[1]
    return next(f for r in report.resources if r.resource == resource for f in r.fields if f.key == key)


def test_the_default_tenant_passes_with_the_default_mapping_and_shows_what_the_fleet_sends() -> None:
    report = check_mapping(reads(tenant(), Mapping()), Mapping())
    assert report.passed, report.failures
    assert keys(report, blocking=True) == set()
    # what the default mapping names and the tenant lacks is said, without failing anything
    assert keys(report) == {"fields.invoice.lines.cancel_qty", "fields.creditmemo.lines.cancel_qty"}
    assert all(r.rejected == 0 for r in report.resources)
    email = finding(report, "fields.customer.email")
    assert (email.checked, email.present, email.missing, email.failures) == (6, 6, 0, 0)
    optin_date = finding(report, "fields.customer.email_optin_date")
    assert (optin_date.present, optin_date.empty) == (3, 3)
    by = {r.resource: r for r in report.resources}
    customers = by["customer"].previews
    assert len(customers) == 3
    profile = customers[0].operations[0]
    assert profile["kind"] == "profile_upsert" and profile["payload"]["email"] == "ann.lee1@example.com"
    assert profile["payload"]["phone_number"] == "+16172531001"
    assert [op["kind"] for op in customers[0].operations[1:]] == ["subscribe", "unsubscribe"]  # e-mail yes, SMS no
    first_order = by["order"].previews[0]
    metrics = [op["payload"]["metric"] for op in first_order.operations]
    assert metrics == ["Placed Order", "Ordered Product", "Fulfilled Order", "Refunded Order"]
    assert first_order.operations[0]["payload"]["value"] == 46.5
    assert by["style"].previews[0].operations[0]["kind"] == "catalog_item_upsert"
    stock = by["inventory"].previews[0].operations[0]
    assert (stock["kind"], stock["payload"]["inventory_quantity"]) == ("variant_inventory", 13)  # 9 + 4


def dialect_reads(tmp_path: Path, mapping: Mapping, *, substitute: bool) -> list[Read]:
    """The tenant as the second dialect serves it, read with `mapping`: where the mapping's path is not the
    dialect's, the read failed and the records come from the dialect's path, as `bcsync mapping check` does."""
    dialect = dialect_mapping(tmp_path)
    default = tenant()
    found = []
    for r in RESOURCES:
        records = tuple(in_dialect(record, r, dialect) for record in default[r])
        path, theirs = getattr(mapping.resources, r).path, getattr(dialect.resources, r).path
        if path == theirs or not substitute:
            found.append(Read(r, path, records))
        else:
            found.append(Read(r, path, records, f"404 Resource '{path}' not found", theirs, ""))
    return found


def test_the_second_dialect_fails_with_the_default_mapping_naming_each_mismatch(tmp_path: Path) -> None:
    report = check_mapping(dialect_reads(tmp_path, Mapping(), substitute=True), Mapping())
    assert not report.passed
    assert all(r.rejected == r.checked for r in report.resources if r.resource != "location")
    found = {m.key: m for m in report.mismatches}
    # its paths, its stamp field, its customer fields, its address layout, its line rows
    assert {"resources.customer.path", "resources.order.path", "resources.inventory.path"} <= set(found)
    assert found["resources.customer.path"].blocking
    assert "'CUSTMAST'" in found["resources.customer.path"].suggestion
    assert found["resources.customer.last_mod"].blocking
    assert "'CHGTS'" in found["resources.customer.last_mod"].suggestion
    assert "'CUSNO'" in found["fields.customer.code"].suggestion
    assert "'EMLOPT'" in found["fields.customer.email_optin"].suggestion
    assert "'BILL', 'SHIP'" in found["fields.customer.addresses.layout"].detail
    assert "'ORDDTL'" in found["fields.order.lines.rows"].suggestion
    assert "'ORDNO'" in found["fields.order.number"].suggestion
    # a field under a child collection that is not there is not named again: the collection says it
    assert "fields.order.lines.qty" not in found


def test_the_second_dialect_passes_with_its_mapping(tmp_path: Path) -> None:
    mapping = dialect_mapping(tmp_path)
    report = check_mapping(dialect_reads(tmp_path, mapping, substitute=False), mapping)
    assert report.passed, report.failures
    assert keys(report, blocking=True) == set()
    by = {r.resource: r for r in report.resources}
    assert all(r.rejected == 0 for r in report.resources)
    assert by["customer"].previews[0].operations[0]["payload"]["external_id"] == "C0001"  # padding, zeros undone
    order = by["order"].previews[0]
    assert [op["payload"]["metric"] for op in order.operations][:2] == ["Placed Order", "Ordered Product"]


def test_unknown_statuses_unread_dates_and_flags_that_never_say_yes_are_named() -> None:
    records = tenant()
    records["order"][0]["ord_status"] = "Z"
    for customer in records["customer"]:
        customer["created"] = "03/02/2025"
        customer["email_optin"] = "T" if customer["pkey"] % 2 else "F"
    report = check_mapping(reads(records, Mapping()), Mapping())
    found = {m.key: m for m in report.mismatches}
    assert "status 'Z'" in found["lifecycle"].detail and found["lifecycle"].blocking
    dates = found["resources.customer.date_formats"]
    assert "'03/02/2025'" in dates.detail and "'%m/%d/%Y'" in dates.suggestion
    assert "['F', 'T']" in found["fields.customer.yes_values"].detail
    assert "['T']" in found["fields.customer.yes_values"].suggestion
    created = finding(report, "fields.customer.created")
    assert (created.failures, created.present) == (6, 6)
    assert "03/02/2025" in created.examples[0]
    assert not report.passed  # every customer rejected for its date, and 1 of 6 orders (17% > 5%)


def test_the_share_of_rejected_records_decides_the_verdict() -> None:
    records = tenant(customers=20)
    records["customer"][0]["email"] = "not an address"
    assert check_mapping(reads(records, Mapping()), Mapping()).passed  # 1 of 20 = 5%: not more than 5%
    strict = check_mapping(reads(records, Mapping()), Mapping(), max_reject=0.04)
    assert strict.failures == ["customer: 1 of 20 sampled records rejected (5% > 4%)"]
    email = finding(strict, "fields.customer.email")
    assert email.failures == 1 and "not an address" in email.examples[0]


@pytest.mark.parametrize("template", ["{upc}", "{style}-{color_code}-{lbl_code}-{dimension}-{size_desc}"])
def test_a_variant_id_template_stock_and_catalog_disagree_on_is_named(template: str) -> None:
    records = tenant()
    for row in records["inventory"]:
        row["upc"] = "0" + UPC  # the inventory carries the EAN-13 form, the style the UPC-A
    mapping = Mapping.model_validate({"catalog": {"variant_external_id": template}})
    found = {m.key: m for m in check_mapping(reads(records, mapping), mapping).mismatches}
    if template == "{upc}":
        assert found["catalog.variant_external_id"].blocking
        assert "'0840070000018'" in found["catalog.variant_external_id"].detail
    else:
        assert "catalog.variant_external_id" not in found


def test_picks_whose_status_never_says_shipped_are_named() -> None:
    records = tenant()
    records["pick"][0]["pick_status"] = "I"  # invoiced paperwork: a tenant whose status says no shipment
    found = {m.key: m for m in check_mapping(reads(records, Mapping()), Mapping()).mismatches}
    assert found["fields.pick.shipped_value"].suggestion == "shipped_when = { field = \"ship_date\", present = true }"
