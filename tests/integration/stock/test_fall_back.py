"""Stock across the November fall-back in New York (issue 15, item 4): a SKU restocked at 01:50 EDT and sold out
an hour of wall clock "earlier", at 01:20 EST, ends at 0 in Klaviyo. By its local last_mod the sell-out looked
older than the restock and its figure was refused. Real poller reads of the Blue Cherry sandbox on its clock,
real workers at concurrency 2, the Klaviyo sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from config.mapping import Mapping, load_mapping
from config.settings import Settings
from config.task_names import HANDLE_CHANGE
from connectors.bluecherry.client import BlueCherryClient
from sandbox.bluecherry.app import create_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.exceptions import ExceptionRegister
from sync.changes import ChangeEvent
from sync.stock.ats import parse_inventory_row
from sync.stock.plan import key_only_external_ids
from tests.integration.stock.conftest import StockFleet
from tests.support.fleet import wait_for, wait_idle
from workers.poller import Poller

pytestmark = pytest.mark.integration
KEY = "stock-dst-key"


@pytest.fixture
def tenant() -> Iterator[ServerThread]:
    config = BlueCherrySandboxConfig(subscription_key=KEY, customers=0, styles=1, orders=0,
                                     start_time="2026-10-31 12:00:00", frozen=True)
    with ServerThread(create_app(config)) as server:
        yield server


def control(tenant: ServerThread, path: str, body: Any) -> None:
    httpx.post(f"{tenant.url}/_sandbox/{path}", json=body, timeout=30).raise_for_status()


def poll(fleet: StockFleet, client: BlueCherryClient, mapping: Mapping) -> None:
    """One poller cycle over the inventory resource, its change events handed to the fleet's workers."""
    settings = Settings.model_validate({k[len("BCSYNC_"):].lower(): v for k, v in fleet.env.items()
                                        if k.startswith("BCSYNC_")})

    def emit(events: list[ChangeEvent]) -> None:
        for event in events:
            fleet.publish(HANDLE_CHANGE, [event.model_dump(mode="json")], event.lane)

    register = ExceptionRegister(fleet.redis, fleet.prefix, mapping.owners)
    Poller(client, fleet.redis, emit, register, mapping=mapping, settings=settings,
           resources=("inventory",)).run_once()


def test_a_sell_out_at_0120_est_after_a_restock_at_0150_edt_reaches_klaviyo(stock_fleet, tenant) -> None:
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.05))
    mapping = load_mapping(fleet.env["BCSYNC_MAPPING_FILE"])  # sellable WH1 and WH2, New York time
    client = BlueCherryClient(tenant.url, KEY, timeout=30, mapping=mapping)
    rows = [r for page in client.iter_pages(mapping.resources.inventory, None) for r in page]
    sku = parse_inventory_row(rows[0], mapping.fields.inventory).sku
    upc = rows[0]["upc"]
    render = key_only_external_ids(mapping.catalog)
    assert render is not None
    variant = render(sku, upc)
    fleet.seed_variants(f"{sku.style}-{sku.color}", [variant], quantity=3)
    fleet.worker("fast")
    fleet.worker("batch")
    fleet.start_flusher(0.3)
    try:
        control(tenant, "clock", {"timezone": "America/New_York", "now": "2026-11-01 00:30:00", "fold": 0})
        control(tenant, "apply", [{"op": "adjust_stock", "upc": upc, "location": "WH2", "qty_oh": 0}])
        control(tenant, "clock", {"now": "2026-11-01 01:50:00", "fold": 0})  # EDT, 05:50Z
        control(tenant, "apply", [{"op": "adjust_stock", "upc": upc, "location": "WH1", "qty_oh": 5}])
        poll(fleet, client, mapping)
        wait_for(lambda: fleet.quantity(variant) == 5, 30, message="the restock in Klaviyo")

        control(tenant, "clock", {"now": "2026-11-01 01:20:00", "fold": 1})  # the second 01:20: EST, 06:20Z
        control(tenant, "apply", [{"op": "adjust_stock", "upc": upc, "location": "WH1", "qty_oh": 0}])
        poll(fleet, client, mapping)
        wait_for(lambda: fleet.quantity(variant) == 0, 30, message="the sell-out in Klaviyo")
        wait_idle(fleet.redis, fleet.prefix, 30)
        assert fleet.quantity(variant) == 0
    finally:
        client.close()
