"""config/examples/: complete mappings of other tenants (the sandbox's dialects) load, and the test helpers lay a
test's own settings over a dialect's mapping as the fleet lays a file over the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.mapping import load_mapping
from tests.support.fleet import DIALECT_MAPPINGS, dialect_mapping, fleet_env
from tests.support.paths import REPO_ROOT

EXAMPLES = sorted((REPO_ROOT / "config" / "examples").glob("*.toml"))


def test_every_dialect_of_the_sandbox_has_its_mapping_file() -> None:
    assert [p.stem for p in EXAMPLES] == [d for d, p in DIALECT_MAPPINGS.items() if p is not None] == ["ibmi"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_mapping_loads(path: Path) -> None:
    mapping = load_mapping(path)
    assert mapping.resources.customer.path != "customer"  # a tenant of its own, not the defaults


def test_a_tests_settings_are_laid_over_the_dialects_mapping(tmp_path: Path) -> None:
    overrides = ('[resources.customer]\npoll_seconds = 2.0\n[lifecycle]\nsales_channels = ["WEB", "POS", "SHOP"]\n'
                 '[fields.pick]\nshipped_when = { field = "pick_stat", equals = "I" }\n')
    written = tmp_path / "mapping.toml"
    written.write_text(dialect_mapping(overrides, "ibmi"), encoding="utf-8")
    merged, example = load_mapping(written), load_mapping(DIALECT_MAPPINGS["ibmi"])
    assert merged.resources.customer.poll_seconds == 2.0 and merged.lifecycle.sales_channels == ("WEB", "POS", "SHOP")
    assert merged.fields.pick.shipped_when is not None and merged.fields.pick.shipped_when.equals == "I"
    assert merged.model_copy(update={
        "resources": merged.resources.model_copy(update={"customer": example.resources.customer}),
        "lifecycle": merged.lifecycle.model_copy(update={"sales_channels": example.lifecycle.sales_channels}),
        "fields": merged.fields.model_copy(update={"pick": example.fields.pick}),
    }) == example  # nothing else of the dialect's mapping lost or changed
    assert dialect_mapping(overrides, "default") == overrides
    with pytest.raises(ValueError, match="unknown dialect 'as400'"):
        dialect_mapping(overrides, "as400")


def test_the_fleet_env_reads_a_dialect_with_its_mapping() -> None:
    assert "BCSYNC_MAPPING_FILE" not in fleet_env("redis://x", "http://k")
    assert fleet_env("redis://x", "http://k", "ibmi")["BCSYNC_MAPPING_FILE"] == str(DIALECT_MAPPINGS["ibmi"])
    assert fleet_env("redis://x", "http://k", "ibmi", BCSYNC_MAPPING_FILE="/m.toml")["BCSYNC_MAPPING_FILE"] == "/m.toml"


def test_bcsync_audit_fallbacks_names_each_absent_field_and_what_stands_in(tmp_path: Path) -> None:
    """Issue 16: a fallback in use is visible in `bcsync audit` - the ibmi tenant has no customer status, order
    entry date or memo date; the default mapping declares none of those absent."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    def fallbacks(mapping_file: Path | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
        if mapping_file is not None:
            env["BCSYNC_MAPPING_FILE"] = str(mapping_file)
        done = subprocess.run([sys.executable, "-m", "workers.cli", "audit", "fallbacks", "--json"], cwd=REPO_ROOT,
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return {row["field"]: row["fallback"] for row in json.loads(done.stdout)}

    ibmi = fallbacks(REPO_ROOT / "config" / "examples" / "ibmi.toml")
    assert ibmi["fields.customer.status"].startswith("every customer is active")
    assert ibmi["fields.order.entered"].startswith("the confirmation date")
    assert "first recorded" in ibmi["fields.creditmemo.date"]
    defaults = fallbacks(None)
    assert not {"fields.customer.status", "fields.order.entered", "fields.creditmemo.date"} & set(defaults)
