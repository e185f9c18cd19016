"""A restock of a high-demand SKU reaches Klaviyo while a 50,000-variant refresh is still draining."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from tests.integration.stock.conftest import inventory_row, variant_id
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration

OLD = "2026-11-20T10:00:00~2026-11-20T18:00:00.000000Z"
BULK = "/api/catalog-variant-bulk-update-jobs"
SCALE = "0.02"  # catalog bulk jobs: 2/s burst, 15/min: 500 jobs would take over half an hour


def test_a_high_demand_restock_overtakes_a_50k_refresh(stock_fleet, tmp_path: Path) -> None:
    record = tmp_path / "k.jsonl"
    fleet = stock_fleet(
        KlaviyoSandboxConfig(rate_limit_scale=float(SCALE), record_path=record, job_step_seconds=0.1),
        BCSYNC_RATE_LIMIT_SCALE=SCALE, BCSYNC_RATE_SHARE="1.0",
    )
    fleet.seed_variants("HOT-BLK", ["HOT-BLK---M"], quantity=0)
    fleet.state.set_figure("HOT-BLK---M", 0, OLD)
    fleet.state.set_planned("HOT-BLK---M", 0, OLD)
    fleet.worker("batch")
    fleet.worker("fast")
    fleet.start_refresh(50_000, OLD)
    fleet.start_flusher(1.0)  # the beat's tick
    wait_for(lambda: len(fleet.sandbox.jobs.jobs) >= 2, 120, message="the refresh draining")

    fleet.records("inventory", [inventory_row("HOT", "BLK", "M", "WH1", oh=12, last_mod="2026-11-20 11:00:00")],
                  "2026-11-20T19:00:00+00:00", "fast")
    wait_for(lambda: fleet.quantity("HOT-BLK---M") == 12, 60, message="the restock in Klaviyo")

    jobs_so_far = len(fleet.sandbox.jobs.jobs)
    refreshed = sum(1 for v in list(fleet.sandbox.catalog.variants.values())
                    if v.attributes.get("inventory_quantity") == 1)
    assert jobs_so_far < 500 and refreshed < 50_000, "the refresh was not draining any more"
    # order of arrival: refresh jobs first, then the restock, with most of the refresh still to come
    paths = [e["path"] for e in fleet.recorded(record) if e["method"] in ("POST", "PATCH")]
    restock_at = paths.index(f"/api/catalog-variants/{variant_id('HOT-BLK---M')}")
    assert paths[:restock_at].count(BULK) >= 2
