"""The CSV report-drop path and the REST path give identical Klaviyo catalog state for the same tenant, on every
tenant dialect, each read with its own mapping file alone (issue 16)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.bluecherry.client import BlueCherryClient
from connectors.bluecherry.csv_drops import MemoryDropTracker
from sandbox.bluecherry.app import create_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from sync.catalog.transform import catalog_operations
from tests.integration.stock.conftest import StockFleet
from tests.support.fleet import both_dialects, configured_like, wait_for
from workers.csv_drops import process_drops

pytestmark = [pytest.mark.integration, both_dialects]
KEY = "stock-key"


@pytest.fixture(scope="module")
def tenant(dialect: str) -> Iterator[ServerThread]:
    config = BlueCherrySandboxConfig(subscription_key=KEY, customers=10, styles=8, orders=60,
                                     start_time="2026-11-20 10:00:00", frozen=True, dialect=dialect)
    with ServerThread(create_app(config)) as server:
        yield server


def catalog(fleet: StockFleet) -> dict[str, Any]:
    state = fleet.sandbox.catalog.state()
    for table in state.values():
        for entry in table.values():
            entry.pop("created"), entry.pop("updated")
            if "variants" in entry:
                entry["variants"] = sorted(entry["variants"])  # creation order follows bulk packing
    return state


def test_csv_and_rest_paths_give_the_same_klaviyo_catalog(stock_fleet, tenant: ServerThread, tmp_path: Path) -> None:
    config = KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.05)
    rest, csv = stock_fleet(config), stock_fleet(config)
    mapping = rest.mapping  # the tenant's dialect's, as the workers read it
    with BlueCherryClient(tenant.url, KEY, mapping=mapping, max_attempts=2) as client:
        styles = [r for page in client.iter_pages(mapping.resources.style, None) for r in page]
        inventory = [r for page in client.iter_pages(mapping.resources.inventory, None) for r in page]
        locations = client.locations()
    drops = tmp_path / "drops"
    drops.mkdir()
    httpx.post(f"{tenant.url}/_sandbox/csv-drop", json={"dir": str(drops)}, timeout=60).raise_for_status()
    variants = sum(op.kind == "catalog_variant_upsert" for op in catalog_operations(styles, mapping).operations)
    assert variants > 20

    for fleet in (rest, csv):
        fleet.worker("batch")
        fleet.start_flusher(0.3)
    observed = "2026-11-20T18:00:00+00:00"
    rest.records("location", locations, observed, "batch")
    rest.records("style", styles, observed, "batch")
    rest.records("inventory", inventory, observed, "batch")
    problems: list[tuple] = []
    tracker = MemoryDropTracker()
    with configured_like(csv.env, csv.celery):  # the drops are read with the fleet's mapping, as `bcsync csv-drops`
        handled = process_drops(drops, tracker, lambda task, args: csv.publish(task, args, "batch"),
                                lambda *problem: problems.append(problem))
        assert handled == 2 and problems == []
        assert process_drops(drops, tracker, lambda task, args: csv.publish(task, args, "batch"),
                             lambda *problem: problems.append(problem)) == 0  # once only

    def settled(fleet: StockFleet) -> bool:
        held = fleet.sandbox.catalog.variants.values()
        return (len(fleet.sandbox.catalog.variants) == variants and fleet.state.jobs_in_flight() == 0
                and fleet.state.outbox_size() == 0 and not fleet.state.pending()
                and any(v.attributes.get("inventory_quantity") for v in held))

    wait_for(lambda: settled(rest) and settled(csv), 120, interval=0.5, message="both catalogs complete")
    wait_for(lambda: catalog(rest) == catalog(csv), 30, interval=0.5, message="identical catalogs")
    assert catalog(rest) == catalog(csv)
