"""Complete figures only, the CSV path (issue 15): an inventory report is split into chunks of 500 rows, one task
each, processed concurrently; a SKU whose warehouse rows fall into two chunks gets no figure until both are
stored, so Klaviyo is never sent the figure of one warehouse (the old code sent hundreds)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from connectors.bluecherry.csv_drops import MemoryDropTracker
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from state.stock_scans import StockScans
from tests.integration.stock.conftest import StockFleet, variant_id
from tests.support.fleet import wait_for
from tests.support.stock_load import variant_rows
from workers.csv_drops import CHUNK, process_drops

pytestmark = pytest.mark.integration

HEADER = "Style,Color,Label,Dimension,Size,UPC,Location,Total QOH,Total Pick,Avail QOH,Total Open\n"
# 1,500 rows, every WH1 row then every WH2 row: chunks [WH1 0-499], [WH1 500-749, WH2 0-249], [WH2 250-749]; with two
# worker processes the third chunk starts only once one of the first two is done
SKUS = 750


def report(folder: Path) -> dict[str, int]:
    """The report, ordered by warehouse as Blue Cherry writes it, and each variant's truth: most SKUs owe in WH2
    more than WH1 holds (0 to sell; WH1 alone would fire a back-in-stock alert), some have stock in both."""
    rng = random.Random(5)
    on_hand: dict[tuple[int, str], int] = {}
    for n in range(SKUS):
        on_hand[(n, "WH1")] = rng.randint(1, 20)
        on_hand[(n, "WH2")] = rng.randint(0, 9) if rng.random() < 0.15 else -on_hand[(n, "WH1")] - rng.randint(0, 5)
    lines = [f"C{n:03d},BLK,,,M,,{wh},{qty},0,{qty},0\n" for wh in ("WH1", "WH2") for n in range(SKUS)
             for qty in [on_hand[(n, wh)]]]
    assert len(lines) >= 3 * CHUNK, "the rows of most SKUs must be chunks apart"
    (folder / "inventory_20261120.csv").write_text(HEADER + "".join(lines))
    return {f"C{n:03d}-BLK---M": max(0, on_hand[(n, "WH1")] + on_hand[(n, "WH2")]) for n in range(SKUS)}


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
    truth = report(drops)
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
