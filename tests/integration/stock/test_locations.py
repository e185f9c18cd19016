"""Stock read before the location lookup is kept, and figures follow once the lookup arrives."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import free_port
from tests.integration.stock.conftest import inventory_row
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration


def test_inventory_before_locations_is_kept_and_computed_when_the_lookup_arrives(stock_fleet, tmp_path: Path):
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False),
                        BCSYNC_BLUECHERRY_BASE_URL=f"http://127.0.0.1:{free_port()}",  # unreachable
                        BCSYNC_BLUECHERRY_MAX_ATTEMPTS="1")
    mapping = tmp_path / "no-sellable-list.toml"
    mapping.write_text('[stock]\nhigh_demand_skus = ["HOT-*"]\ndebounce_seconds = 0.3\n')
    fleet.env["BCSYNC_MAPPING_FILE"] = str(mapping)  # sellable = the lookup's flags, not a configured list
    fleet.seed_variants("TEE-BLK", ["TEE-BLK---M"], quantity=0)
    fleet.worker("fast")
    fleet.worker("batch")
    fleet.start_flusher(0.3)
    fleet.records("inventory", [inventory_row("TEE", "BLK", "M", "WH1", oh=4),
                                inventory_row("TEE", "BLK", "M", "QC", oh=90)], "2026-11-20T18:00:00+00:00", "fast")
    exception_key = f"{fleet.prefix}:exception:catalog_error|stock:configuration"
    wait_for(lambda: fleet.redis.exists(exception_key), 60, message="an exception: no location known")
    assert fleet.quantity("TEE-BLK---M") == 0  # nothing computed over no warehouse
    locations = [{"location": "WH1", "loc_name": "Main", "sellable": "Y"},
                 {"location": "QC", "loc_name": "Quality control", "sellable": "N"}]
    fleet.records("location", locations, "2026-11-20T18:01:00+00:00", "fast")
    wait_for(lambda: fleet.quantity("TEE-BLK---M") == 4, 60, message="the stored rows computed: 4, QC not counted")
