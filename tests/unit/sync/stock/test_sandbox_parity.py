"""REST and CSV paths over the same Blue Cherry sandbox tenant give identical ATS and catalog operations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from config.mapping import Mapping
from connectors.bluecherry.client import BlueCherryClient
from connectors.bluecherry.csv_drops import read_drop
from sandbox.bluecherry.app import create_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.server import ServerThread
from sync.catalog.transform import catalog_operations
from sync.stock.ats import compute_ats, parse_inventory_row, sellable_warehouses

pytestmark = pytest.mark.integration
MAPPING = Mapping()
KEY = "stock-key"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ServerThread]:
    config = BlueCherrySandboxConfig(subscription_key=KEY, customers=40, styles=25, orders=400,
                                     start_time="2026-11-20 10:00:00", frozen=True)
    with ServerThread(create_app(config)) as server:
        yield server


def rest_records(server: ServerThread) -> tuple[list[dict], list[dict], list[dict]]:
    with BlueCherryClient(server.url, KEY, mapping=MAPPING, max_attempts=2) as client:
        resources = MAPPING.resources
        styles = [r for page in client.iter_pages(resources.style, None) for r in page]
        inventory = [r for page in client.iter_pages(resources.inventory, None) for r in page]
        return styles, inventory, client.locations()


def ats_of(inventory: list[dict], locations: list[dict]) -> dict:
    rows = [parse_inventory_row(r, MAPPING.fields.inventory) for r in inventory]
    sellable = sellable_warehouses(MAPPING.stock, locations, MAPPING.fields.location)
    return {sku: f.quantity for sku, f in compute_ats(rows, sellable).items()}


def catalog_state(styles: list[dict], ats: dict) -> list[tuple]:
    plan = catalog_operations(styles, MAPPING, ats=ats)
    assert plan.problems == []
    return sorted((op.kind, op.key, op.lane, repr(sorted(op.payload.items()))) for op in plan.operations)


def test_rest_and_csv_drop_of_the_same_tenant_agree(sandbox: ServerThread, tmp_path: Path) -> None:
    response = httpx.post(f"{sandbox.url}/_sandbox/csv-drop", json={"dir": str(tmp_path)}, timeout=60)
    response.raise_for_status()
    drops = {d.kind: d for d in (read_drop(Path(f), MAPPING) for f in response.json()["files"])}
    assert drops["inventory"].problems == [] and drops["style"].problems == []
    styles, inventory, locations = rest_records(sandbox)

    rest_ats = ats_of(inventory, locations)
    csv_ats = ats_of(drops["inventory"].records, locations)
    assert rest_ats == csv_ats
    assert len(rest_ats) > 50 and any(rest_ats.values())
    # the figure is not plain on-hand: some SKU has units on hand that are all picked or owed
    on_hand: dict[tuple[str, ...], int] = {}
    for r in inventory:
        if r["location"] in ("WH1", "WH2"):
            key = (r["style"], r["color_code"], r["lbl_code"], r["dimension"], r["size_desc"])
            on_hand[key] = on_hand.get(key, 0) + r["qty_oh"]
    assert any(rest_ats[sku] < on_hand.get(tuple(sku), 0) for sku in rest_ats)

    assert catalog_state(styles, rest_ats) == catalog_state(drops["style"].records, csv_ats)
