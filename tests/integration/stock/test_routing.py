"""Stock changes through real workers into the Klaviyo sandbox: true ATS, and the lane each change takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from tests.integration.stock.conftest import inventory_row, variant_id
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration

BULK_UPDATE = "/api/catalog-variant-bulk-update-jobs"


def bulk_rows(entries: list[dict]) -> set[str]:
    return {row["id"] for e in entries if e["method"] == "POST" and e["path"] == BULK_UPDATE
            for row in e["body"]["data"]["attributes"]["variants"]["data"]}


def patches(entries: list[dict]) -> set[str]:
    return {e["path"].rsplit("/", 1)[1] for e in entries if e["method"] == "PATCH"}


def test_on_hand_fully_picked_or_owed_is_zero_and_3_to_5_routes_by_demand(stock_fleet, tmp_path: Path) -> None:
    record = tmp_path / "klaviyo.jsonl"
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record, job_step_seconds=0.1))
    ids = ["HOT-BLK---M", "TEE-BLK---M", "TEE-BLK---L", "TEE-RED---S"]
    fleet.seed_variants("TEE-BLK", ids, quantity=0)
    fleet.worker("fast")
    fleet.worker("batch")
    fleet.start_flusher(0.3)

    # every SKU at 3 first (routes vary: a first figure), then wait until Klaviyo shows 3 everywhere
    parts = [(ext.split("-")[0], ext.split("-")[1], ext.rsplit("-", 1)[1]) for ext in ids]
    first = [inventory_row(style, color, size, "WH1", oh=3) for style, color, size in parts]
    fleet.records("inventory", first, "2026-11-20T18:00:00+00:00", "fast")
    wait_for(lambda: all(fleet.quantity(e) == 3 for e in ids), 60, message="3 units everywhere")
    before = len(fleet.recorded(record))

    # 3 -> 5 for the high-demand SKU and two others; the red tee: 10 on hand, 4 picked, 6 owed to open orders
    rows = [
        inventory_row("HOT", "BLK", "M", "WH1", oh=5, last_mod="2026-11-20 10:05:00"),
        inventory_row("TEE", "BLK", "M", "WH1", oh=5, last_mod="2026-11-20 10:05:00"),
        inventory_row("TEE", "BLK", "L", "WH1", oh=5, last_mod="2026-11-20 10:05:00"),
        inventory_row("TEE", "RED", "S", "WH1", oh=10, pick=4, open_qty=6, last_mod="2026-11-20 10:05:00"),
        # a non-sellable warehouse holds plenty: it must not count
        inventory_row("TEE", "RED", "S", "QC", oh=50, last_mod="2026-11-20 10:05:00"),
    ]
    fleet.records("inventory", rows, "2026-11-20T18:05:00+00:00", "fast")
    wait_for(lambda: [fleet.quantity(e) for e in ids] == [5, 5, 5, 0], 60, message="5, 5, 5 and 0")

    after = fleet.recorded(record)[before:]
    # high demand: a single PATCH on the fast lane; the others: one bulk job from the batch lane
    assert variant_id("HOT-BLK---M") in patches(after)
    assert variant_id("HOT-BLK---M") not in bulk_rows(after)
    assert {variant_id("TEE-BLK---M"), variant_id("TEE-BLK---L")} <= bulk_rows(after)
    assert not {variant_id("TEE-BLK---M"), variant_id("TEE-BLK---L")} & patches(after)
    # 3 -> 0 is a change to zero: fast for any SKU, and the figure is 0 although 10 are on hand
    assert variant_id("TEE-RED---S") in patches(after)
    assert fleet.quantity("TEE-RED---S") == 0
