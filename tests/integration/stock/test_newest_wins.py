"""A bulk stock update computed before a fast restock never leaves its older figure in Klaviyo: dropped when
sent after the restock, repaired when Klaviyo applies it after the restock."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.task_names import DELIVER
from delivery.envelope import envelope
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sync.stock.urgency import inventory_operation
from tests.integration.stock.conftest import StockFleet, variant_id
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration

OLD = "2026-11-20T10:00:00~2026-11-20T18:00:00.000000Z"
NEW = "2026-11-20T10:01:00~2026-11-20T18:01:00.000000Z"
BULK = "/api/catalog-variant-bulk-update-jobs"


def plan(fleet: StockFleet, external_id: str, quantity: int, version: str) -> None:
    """What the flow records when it computes a figure (flows.stock.plan_figure)."""
    fleet.state.set_figure(external_id, quantity, version)
    fleet.state.set_planned(external_id, quantity, version)


def publish_bulk(fleet: StockFleet) -> None:
    ops = [inventory_operation("X-BLK---M", 2, OLD, "batch"), inventory_operation("Y-BLK---M", 4, OLD, "batch")]
    fleet.publish(DELIVER, [envelope(ops, "batch")], "batch")


def restock(fleet: StockFleet) -> None:
    plan(fleet, "X-BLK---M", 9, NEW)
    fleet.publish(DELIVER, [envelope([inventory_operation("X-BLK---M", 9, NEW, "fast")], "fast")], "fast")


def setup(fleet: StockFleet) -> None:
    fleet.seed_variants("X-BLK", ["X-BLK---M", "Y-BLK---M"], quantity=0)
    plan(fleet, "X-BLK---M", 2, OLD)
    plan(fleet, "Y-BLK---M", 4, OLD)


def test_a_bulk_update_sent_after_a_restock_drops_the_older_row(stock_fleet, tmp_path: Path) -> None:
    record = tmp_path / "k.jsonl"
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record, job_step_seconds=0.1))
    setup(fleet)
    publish_bulk(fleet)  # waits in the batch queue: no batch worker yet
    fleet.worker("fast")
    restock(fleet)
    wait_for(lambda: fleet.quantity("X-BLK---M") == 9, 60, message="the restock")
    fleet.worker("batch")
    wait_for(lambda: fleet.quantity("Y-BLK---M") == 4, 60, message="the bulk update")
    wait_for(lambda: fleet.state.jobs_in_flight() == 0, 60, message="the job read back")
    assert fleet.quantity("X-BLK---M") == 9
    # the older row never left: every write that named X carried the restocked 9
    writes = [row["attributes"]["inventory_quantity"] for e in fleet.recorded(record) if e["method"] != "GET"
              for row in (e["body"]["data"]["attributes"]["variants"]["data"] if e["path"] == BULK
                          else [e["body"]["data"]]) if row["id"] == variant_id("X-BLK---M")]
    assert writes == [9]


def test_a_bulk_job_applied_after_a_restock_is_repaired(stock_fleet, tmp_path: Path) -> None:
    record = tmp_path / "k.jsonl"
    # Jobs are applied 2 x 1.5 s after creation: the restock PATCH lands in between.
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record, job_step_seconds=1.5))
    setup(fleet)
    fleet.worker("fast")
    fleet.worker("batch")
    publish_bulk(fleet)
    wait_for(lambda: fleet.sandbox.jobs.jobs, 60, message="the bulk job created")
    restock(fleet)
    wait_for(lambda: fleet.quantity("X-BLK---M") == 9, 60, message="the restock")
    (job,) = fleet.sandbox.jobs.jobs.values()
    assert job.status != "complete", "the job completed before the restock: the test proves nothing"
    wait_for(lambda: job.status == "complete", 60, message="the job applied")
    wait_for(lambda: fleet.state.jobs_in_flight() == 0, 60, message="the job read back")
    wait_for(lambda: fleet.quantity("X-BLK---M") == 9, 30, message="the restocked figure back")
    assert fleet.quantity("Y-BLK---M") == 4
    # order of arrival: the job, the restock, then (after the job overwrote it) the restocked figure again
    entries = [e for e in fleet.recorded(record) if e["method"] in ("POST", "PATCH")]
    shape = [(e["path"] == BULK) or e["body"]["data"]["attributes"]["inventory_quantity"] for e in entries]
    assert shape == [True, 9, 9]
