"""Complete figures only, the CSV path (issue 15): an inventory report is split into chunks of 500 rows, one task
each, processed concurrently; a SKU whose warehouse rows fall into two chunks gets no figure until both are
stored, so Klaviyo is never sent the figure of one warehouse (the old code sent hundreds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.bluecherry.csv_drops import MemoryDropTracker
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from state.stock_scans import StockScans
from tests.integration.stock.conftest import StockFleet, variant_id
from tests.support.fleet import wait_for
from tests.support.split_report import write_split_report
from tests.support.stock_load import variant_rows
from workers.csv_drops import process_drops

pytestmark = pytest.mark.integration


def written(fleet: StockFleet, record: Path) -> list[tuple[str, int]]:
    """(variant external_id, inventory_quantity) of every stock write Klaviyo received, in order."""
    out: list[tuple[str, int]] = []
    for entry in fleet.recorded(record):
        if entry["method"] in ("POST", "PATCH") and str(entry["path"]).startswith("/api/catalog-variant"):
            out += [(str(row.get("id", ""))[len(variant_id("")):], int(row["attributes"]["inventory_quantity"]))
                    for row in variant_rows(entry["body"])]
    return out


def test_a_report_whose_sku_rows_are_chunks_apart_sends_only_whole_figures(stock_fleet: Any, tmp_path: Path) -> None:
    record = tmp_path / "klaviyo.jsonl"
    fleet: StockFleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record,
                                                         job_step_seconds=0.1))
    drops = tmp_path / "drops"
    drops.mkdir()
    truth = write_split_report(drops)
    fleet.seed_variants("C-BLK", list(truth), quantity=0)
    for external_id in truth:  # Klaviyo holds 0 for each, as delivered before: 0 -> positive takes the fast lane
        fleet.state.set_planned(external_id, 0, "0")
    fleet.worker("batch", concurrency=2)
    fleet.worker("fast")  # a figure going from 0 to positive or back takes the fast lane
    fleet.start_flusher(0.3)

    handled = process_drops(drops, MemoryDropTracker(), lambda task, args: fleet.publish(task, args, "batch"),
                            lambda *problem: pytest.fail(f"unexpected problem {problem}"),
                            StockScans(fleet.redis, fleet.prefix))
    assert handled == 1
    wait_for(lambda: all(fleet.quantity(e) == q for e, q in truth.items()), 60, interval=0.2,
             message="every variant's figure")
    partial = [(e, q) for e, q in written(fleet, record) if q != truth[e]]
    assert not partial, f"{len(partial)} figures of one warehouse sent, e.g. {partial[:5]}"
