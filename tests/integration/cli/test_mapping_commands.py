"""`bcsync mapping check` and `bcsync mapping suggest` as an onboarding engineer runs them: a real `bcsync`
process against the Blue Cherry sandbox over HTTP, in its default dialect and in the ibmi dialect (a second
tenant with its own names and habits, config/examples/ibmi.toml its mapping)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.mapping import Mapping, load_mapping
from sandbox.bluecherry.app import create_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.server import ServerThread
from sync.onboarding.check import RESOURCES

BCSYNC = str(Path(sys.executable).with_name("bcsync"))
KEY = "onboarding-key"
IBMI = Path(__file__).resolve().parents[3] / "config" / "examples" / "ibmi.toml"


@pytest.fixture(scope="module")
def tenants() -> Iterator[dict[str, str]]:
    """The same small tenant served in both dialects (frozen clock): dialect -> base URL."""
    servers = {}
    try:
        for dialect in ("default", "ibmi"):
            config = BlueCherrySandboxConfig(subscription_key=KEY, customers=20, styles=2, orders=30, dialect=dialect,
                                             start_time="2026-03-02 10:00:00", frozen=True)
            servers[dialect] = ServerThread(create_app(config)).__enter__()
        yield {dialect: server.url for dialect, server in servers.items()}
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)


def bcsync(url: str, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BCSYNC_BLUECHERRY_BASE_URL": url, "BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY": key,
           "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1"}
    env.pop("BCSYNC_MAPPING_FILE", None)
    return subprocess.run([BCSYNC, "mapping", *args], env=env, capture_output=True, text=True, timeout=60)


def report_of(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_check_passes_on_the_default_dialect_with_the_default_mapping(tenants: dict[str, str]) -> None:
    out = bcsync(tenants["default"], "check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "VERDICT: PASS" in out.stdout
    for resource in RESOURCES:
        assert f"== {resource}" in out.stdout
    # what the fleet would send: a profile with its consent, an order's events, catalog items, stock figures
    for sent in ("profile_upsert", "subscribe", "event 'Placed Order'", "event 'Fulfilled Order'",
                 "catalog_item_upsert", "variant_inventory"):
        assert sent in out.stdout, sent
    report = report_of(bcsync(tenants["default"], "check", "--json"))
    assert report["passed"] and report["failures"] == []
    assert all(r["rejected"] == 0 for r in report["resources"])
    assert not [m for m in report["mismatches"] if m["blocking"]]


def test_check_fails_on_the_second_dialect_with_the_default_mapping_naming_each_mismatch(
        tenants: dict[str, str]) -> None:
    out = bcsync(tenants["ibmi"], "check")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "VERDICT: FAIL" in out.stdout
    report = report_of(bcsync(tenants["ibmi"], "check", "--json"))
    assert not report["passed"]
    found = {m["key"]: m for m in report["mismatches"]}
    ibmi = load_mapping(IBMI)
    for resource in RESOURCES:  # every path, and where the tenant has that resource
        path = found[f"resources.{resource}.path"]
        assert path["blocking"]
        assert f"'{getattr(ibmi.resources, resource).path}'" in path["suggestion"], resource
    for resource in ("customer", "order", "pick", "invoice", "creditmemo", "style", "inventory"):
        assert "'chg_stamp'" in found[f"resources.{resource}.last_mod"]["suggestion"], resource
    assert found["resources.inventory.envelope"]["suggestion"] == 'envelope = "value"'
    hints = {"fields.customer.code": "cust_code", "fields.customer.email": "email_addr",
             "fields.customer.phone": "phone_nbr", "fields.customer.email_optin": "email_opt",
             "fields.customer.sms_optin": "sms_opt", "fields.order.number": "order_no",
             "fields.order.status": "order_stat", "fields.order.confirmed": "conf_dt",
             "fields.order.lines.rows": "soline", "fields.pick.ship_date": "ship_dt",
             "fields.style.skus": "stylesku", "fields.inventory.warehouse": "whse_code",
             "fields.location.sellable": "sell_fl"}
    for key, name in hints.items():
        assert f"'{name}'" in found[key]["suggestion"], (key, found[key])
    assert "'bill_', 'ship_'" in found["fields.customer.addresses.layout"]["detail"]
    # the text report says the same, key by key
    for key in (*hints, "resources.customer.path", "fields.customer.addresses.layout"):
        assert f"{key}: " in out.stdout, key


def test_check_passes_on_the_second_dialect_with_its_mapping(tenants: dict[str, str]) -> None:
    out = bcsync(tenants["ibmi"], "check", "--mapping", str(IBMI))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "VERDICT: PASS" in out.stdout
    report = report_of(bcsync(tenants["ibmi"], "check", "--mapping", str(IBMI), "--json"))
    assert all(r["rejected"] == 0 and r["read_error"] is None for r in report["resources"])
    assert report["mismatches"] == []
    customers = next(r for r in report["resources"] if r["resource"] == "customer")
    profile = customers["previews"][0]["operations"][0]["payload"]
    assert profile["email"] == profile["email"].lower() and profile["external_id"] == profile["external_id"].strip()


def test_suggest_on_the_second_dialect_gets_paths_keys_email_phone_consent_and_order_number(
        tenants: dict[str, str], tmp_path: Path) -> None:
    written = tmp_path / "suggested.toml"
    out = bcsync(tenants["ibmi"], "suggest", "--out", str(written))
    assert out.returncode == 0, out.stderr
    suggested, ibmi = load_mapping(written), load_mapping(IBMI)  # the loader accepts it
    for resource in RESOURCES:
        ours, theirs = getattr(suggested.resources, resource), getattr(ibmi.resources, resource)
        assert (ours.path, ours.key, ours.last_mod, ours.not_found, ours.envelope) == (
            theirs.path, theirs.key, theirs.last_mod, theirs.not_found, theirs.envelope), resource
    for key in ("code", "email", "phone", "email_optin", "sms_optin", "delete_flag"):
        assert getattr(suggested.fields.customer, key) == getattr(ibmi.fields.customer, key), key
    assert (suggested.fields.order.number, suggested.fields.order.customer) == ("order_no", "cust_code")
    assert suggested.tenant.date_formats == ibmi.tenant.date_formats
    text = written.read_text(encoding="utf-8")
    assert "# 'email_addr': 100% of" in text  # each guess says why
    # checked with what it suggests, the tenant fails on nothing but the status codes, which only a person knows
    report = report_of(bcsync(tenants["ibmi"], "check", "--mapping", str(written), "--json"))
    assert {m["key"] for m in report["mismatches"] if m["blocking"]} == {"lifecycle", "fields.order.status"}
    assert {f.split(":")[0] for f in report["failures"]} == {"order"}


def test_suggest_on_the_default_dialect_writes_the_defaults_back(tenants: dict[str, str]) -> None:
    out = bcsync(tenants["default"], "suggest")
    assert out.returncode == 0, out.stderr
    assert "resources: customer = 'customer', order = 'order'" in out.stderr
    folder = Path(os.environ.get("TMPDIR", "/tmp"))
    path = folder / f"suggested-default-{os.getpid()}.toml"
    try:
        path.write_text(out.stdout, encoding="utf-8")
        suggested = load_mapping(path)
    finally:
        path.unlink(missing_ok=True)
    default = Mapping()
    for resource in RESOURCES:
        assert getattr(suggested.resources, resource).path == getattr(default.resources, resource).path
    assert suggested.fields.customer == default.fields.customer


def test_check_one_resource_and_refusals(tenants: dict[str, str]) -> None:
    report = report_of(bcsync(tenants["default"], "check", "--resource", "customer", "--sample", "5", "--json"))
    assert [r["resource"] for r in report["resources"]] == ["customer"]
    assert report["resources"][0]["records"] == 5
    unknown = bcsync(tenants["default"], "check", "--resource", "customers")
    assert unknown.returncode == 2 and "unknown resource customers" in unknown.stderr
    refused = bcsync(tenants["default"], "check", key="wrong-key")
    assert refused.returncode == 2 and "cannot check" in refused.stderr
    assert "Traceback" not in refused.stderr
