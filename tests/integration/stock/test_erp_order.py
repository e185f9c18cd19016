"""Stock figures ordered by the ERP, whatever the workers do (issue 15, items 1 and 2): a warehouse made
non-sellable reaches Klaviyo, two changes of one row within a second processed out of order leave the newer
one, and two workers storing rows of one SKU at once keep the newest row. Real workers (concurrency 2), the
Klaviyo sandbox, change events as the poller emits them (`bcsync.handle_change`, with their change versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.task_names import HANDLE_CHANGE
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import free_port
from sync.changes import ChangeEvent
from tests.integration.stock.conftest import StockFleet, inventory_row
from tests.support.fleet import wait_for, wait_idle
from tests.support.stock_race import MAX_PAUSE

pytestmark = pytest.mark.integration
HOT = "HOT-BLK---M"  # high demand: every change is a fast single PATCH


def change(fleet: StockFleet, resource: str, record: dict[str, Any], version: str, lane: str) -> None:
    """A change event as the poller emits it, with its change version."""
    key = f"{record.get('location')}" if resource == "location" else f"{record['style']}@{record['location']}"
    event = ChangeEvent(resource=resource, key=key, kind="fields_changed", lane=lane, record=record,  # type: ignore[arg-type]
                        fingerprint=version, last_mod=str(record.get("last_mod", "")), version=version)
    fleet.publish(HANDLE_CHANGE, [event.model_dump(mode="json")], lane)


def row(oh: int, location: str = "WH1", last_mod: str = "2026-11-20 10:00:00") -> dict[str, Any]:
    return inventory_row("HOT", "BLK", "M", location, oh=oh, last_mod=last_mod)


def location(code: str, sellable: str, last_mod: str) -> dict[str, Any]:
    return {"location": code, "loc_name": code, "loc_type": "W", "sellable": sellable, "last_mod": last_mod}


def test_a_warehouse_made_non_sellable_reaches_klaviyo(stock_fleet, tmp_path: Path) -> None:
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False),
                        BCSYNC_BLUECHERRY_BASE_URL=f"http://127.0.0.1:{free_port()}",  # unreachable: no lookup read
                        BCSYNC_BLUECHERRY_MAX_ATTEMPTS="1")
    mapping = tmp_path / "sellable-by-location.toml"
    mapping.write_text('[stock]\nhigh_demand_skus = ["HOT-*"]\ndebounce_seconds = 0.3\n')
    fleet.env["BCSYNC_MAPPING_FILE"] = str(mapping)  # sellable = the Location records' flags
    fleet.seed_variants("HOT-BLK", [HOT], quantity=3)
    fleet.worker("fast")
    fleet.worker("batch")
    change(fleet, "location", location("WH1", "Y", "2026-11-20 09:00:00"), "2026-11-20T14:00:00Z#000001", "batch")
    change(fleet, "location", location("WH2", "Y", "2026-11-20 09:00:00"), "2026-11-20T14:00:00Z#000001", "batch")
    wait_for(lambda: fleet.redis.hlen(f"{fleet.prefix}:stock:locations") == 2, 30, message="the locations stored")
    change(fleet, "inventory", row(0, "WH1"), "2026-11-20T15:00:00Z#000001", "fast")
    change(fleet, "inventory", row(6, "WH2", "2026-11-20 10:05:00"), "2026-11-20T15:05:00Z#000001", "fast")
    wait_for(lambda: fleet.quantity(HOT) == 6, 30, message="6 units, all in WH2")

    # WH2 is made non-sellable: none of the SKU's rows changed, the newest of its sellable rows is older
    change(fleet, "location", location("WH2", "N", "2026-11-20 11:00:00"), "2026-11-20T16:00:00Z#000002", "batch")
    wait_for(lambda: fleet.quantity(HOT) == 0, 30, message="0 units: WH2 no longer counts")


def test_two_changes_of_one_row_within_a_second_processed_out_of_order_leave_the_newer(stock_fleet) -> None:
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False))
    fleet.seed_variants("HOT-BLK", [HOT], quantity=3)
    fleet.worker("fast")
    # restocked to 5, then sold out, within the same second: same last_mod, the poller's sequence orders them
    restock, sell_out = (row(5), "2026-11-20T15:00:00Z#000001"), (row(0), "2026-11-20T15:00:00Z#000002")
    change(fleet, "inventory", *sell_out, "fast")  # the newer change is processed first ...
    wait_for(lambda: fleet.quantity(HOT) == 0, 30, message="the sell-out in Klaviyo")
    change(fleet, "inventory", *restock, "fast")  # ... then the older one, later by any worker's clock
    wait_idle(fleet.redis, fleet.prefix, 30)
    assert fleet.quantity(HOT) == 0
    assert fleet.state.figure(HOT) is not None and fleet.state.figure(HOT)[0] == 0  # type: ignore[index]


def test_two_workers_storing_rows_of_one_sku_at_once_keep_the_newest_row(stock_fleet) -> None:
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False))
    fleet.seed_variants("HOT-BLK", [HOT], quantity=3)
    fleet.worker("fast", concurrency=2, include=("tests.support.stock_race",))
    key = f"{fleet.prefix}:test:stock-race"
    fleet.redis.set(f"{key}:armed", "1")
    # worker 1 reads the SKU's rows to store WH1 at 2 units, and is overtaken before it writes ...
    change(fleet, "inventory", row(2), "2026-11-20T15:00:00Z#000001", "fast")
    wait_for(lambda: fleet.redis.exists(f"{key}:paused"), 20, message="worker 1 paused after its read")
    # ... by worker 2 storing the newer WH1 row, 7 units, all the way to Klaviyo
    change(fleet, "inventory", row(7, last_mod="2026-11-20 10:01:00"), "2026-11-20T15:01:00Z#000002", "fast")
    wait_for(lambda: fleet.quantity(HOT) == 7, MAX_PAUSE, message="worker 2's figure while worker 1 waits")
    fleet.redis.set(f"{key}:go", "1")
    wait_idle(fleet.redis, fleet.prefix, 30)
    # a row of another warehouse: its figure is computed from every stored row, WH1's must be the newest
    change(fleet, "inventory", row(1, "WH2", "2026-11-20 10:02:00"), "2026-11-20T15:02:00Z#000001", "fast")
    wait_for(lambda: fleet.quantity(HOT) == 8, 30, message="7 in WH1 + 1 in WH2")
    wait_idle(fleet.redis, fleet.prefix, 30)
    assert fleet.quantity(HOT) == 8
