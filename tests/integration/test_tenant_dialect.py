"""A second tenant, by configuration alone (issue 16): the Blue Cherry sandbox speaking the `ibmi` dialect
(docs/sandbox.md, "Blue Cherry tenant dialects"), read by the fleet with config/examples/ibmi.toml - a first
load gives exactly what the independent oracle expects. Read with the default mapping instead, the same tenant
fails loudly: read errors, invalid_record exceptions, nothing sent - never a silent nothing.

Every lane at concurrency 2, beat and the poller as processes, both sandboxes over HTTP (bench/drill_fleet.py)."""

from __future__ import annotations

import logging
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.drill_fleet import DrillFleet, DrillSize
from config.mapping import Mapping, load_mapping
from connectors.bluecherry.client import BlueCherryClient
from sync.changes import ChangeEvent
from tests.support.fleet import DIALECT_MAPPINGS, toml_text
from workers.poller import Poller

pytestmark = pytest.mark.integration

SIZE = DrillSize(customers=20, styles=2, orders=30, warmup_seconds=0, fault_seconds=0, quiet_seconds=4,
                 patience_seconds=120)
SHORT_DEBOUNCE = "[stock]\ndebounce_seconds = 0.5\n"  # stock figures go out at once: no 30 s wait in a test
ORDER_SIDE = ("customer", "order", "pick", "invoice", "creditmemo")


@pytest.fixture(scope="module")
def fleet() -> Iterator[DrillFleet]:
    with DrillFleet(SIZE, dialect="ibmi", mapping=SHORT_DEBOUNCE) as fleet:
        yield fleet


def test_a_first_load_of_the_ibmi_tenant_gives_the_oracles_klaviyo_state(fleet: DrillFleet) -> None:
    waited = fleet.wait_quiescent()
    diff = fleet.oracle_diff()
    counts = diff.counts()
    report = f"{counts}\n{diff.report()}"
    assert waited is not None, report
    assert counts == dict.fromkeys(counts, 0), report  # 0 profiles missing or split, events and stock right
    dump = fleet.bluecherry("dump")
    assert dump["dialect"] == "ibmi" and "SalesOrder" in dump["resources"]
    state = fleet.klaviyo_control("state")
    assert len(state["profiles"]) >= SIZE.customers  # the customers, and the guest shoppers
    assert sum(len(events) for events in state["events"].values()) > SIZE.orders
    assert len(state["catalog"]["variants"]) > 0
    assert fleet.dead_letters_by_kind() == {}
    # the generated storefront orders without their reference wait, as in the default tenant; nothing else
    assert {kind.split("/")[-1] for kind in fleet.exceptions_by_type()} <= {"storefront_ref_missing"}


class Sink:
    """The poller's exception sink, kept in a list."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str]] = []

    def record(self, type: str, record_key: str, reason: str, severity: Any = "error",
               details: dict[str, Any] | None = None) -> None:
        self.recorded.append((type, record_key, reason))


def one_cycle(fleet: DrillFleet, mapping: Mapping, prefix: str) -> tuple[dict[str, Any], Sink, list[ChangeEvent]]:
    """One poller cycle over the ibmi tenant with `mapping`, in a key space of its own; what it would emit is
    kept, not sent."""
    emitted: list[ChangeEvent] = []
    sink = Sink()
    settings = fleet.settings.model_copy(update={"key_prefix": prefix})
    client = BlueCherryClient(fleet.bc.url, "drill-key", timeout=10, max_attempts=1, mapping=mapping)
    poller = Poller(client, fleet.redis, emitted.extend, sink, mapping=mapping, settings=settings,
                    release=lambda scans: None)
    return poller.run_once(), sink, emitted


def test_read_with_the_default_mapping_the_tenant_fails_loudly(fleet: DrillFleet,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # the defaults as they are: every resource path is a 404 - a read error per resource, logged, nothing sent
    with caplog.at_level(logging.ERROR, logger="bcsync.poller"):
        results, sink, emitted = one_cycle(fleet, Mapping(), "wrong-defaults")
    assert all(result.aborted for result in results.values()) and not emitted
    assert "customer: Blue Cherry read failed" in caplog.text and "Resource 'customer' not found" in caplog.text

    # the defaults pointed at the tenant's resources (what it takes to read a page at all): every customer,
    # order, pick, invoice and memo is an invalid_record - its change stamp is no date the defaults read
    ibmi = tomllib.loads(DIALECT_MAPPINGS["ibmi"].read_text(encoding="utf-8"))  # type: ignore[union-attr]
    results, sink, emitted = one_cycle(fleet, mapping_of({"resources": ibmi["resources"]}), "wrong-paths")
    invalid = {key.split(":")[0] for kind, key, _ in sink.recorded if kind == "invalid_record"}
    assert set(ORDER_SIDE) <= invalid, sink.recorded[:5]
    for name in ORDER_SIDE:
        assert results[name].records > 0 and results[name].invalid == results[name].records, results[name]
    assert not [e for e in emitted if e.resource in ORDER_SIDE]
    assert any("chg_stamp" in reason for _, _, reason in sink.recorded)

    # ... and with its dates too, every customer still is one: the default field names are not its fields
    tenant = {"tenant": ibmi["tenant"], "resources": ibmi["resources"]}
    results, sink, emitted = one_cycle(fleet, mapping_of(tenant), "wrong-fields")
    customers = [r for kind, key, r in sink.recorded if kind == "invalid_record" and key.startswith("customer:")]
    assert results["customer"].invalid == results["customer"].records == len(customers) > 0, sink.recorded[:5]
    assert not [e for e in emitted if e.resource == "customer"]


def mapping_of(document: dict[str, Any]) -> Mapping:
    """A mapping of only these tables over the defaults, loaded as the fleet loads a file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mapping.toml"
        path.write_text(toml_text(document), encoding="utf-8")
        return load_mapping(path)
