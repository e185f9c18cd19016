"""A catalog job's status read that the fleet's budget refuses waits in the delayed schedule for its turn, not in
the worker: a catalog job's read has the same 750/min as its creation, so at the ceiling reads are refused often.
Waiting inline, each held one of the batch lane's pool processes while every family's deliveries queued behind
it (bench.budget: the lane half idle, 110-136 tasks queued, bulk events at half their ceiling); a wait longer
than the inline cap raised out of the task, counted as its failure - eight in a row dead-lettered the job's
read-back, so its rows were never recorded or marked created.

The functions run in this process, on a real private Redis and a Klaviyo sandbox on loopback whose jobs apply
only when the test says so; the process keeps the production inline wait (1.5 s)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from config.mapping import Mapping
from config.task_names import CHECK_CATALOG_JOB
from delivery.engine import process_envelope
from delivery.envelope import envelope
from delivery.runtime import Runtime
from delivery.senders.catalog import check_catalog_job
from sandbox.klaviyo.state import KlaviyoSandbox
from sync.catalog.transform import catalog_operations
from tests.support.fleet import klaviyo_applying_jobs_on_demand, worker_runtime
from tests.unit.sync.stock.conftest import sku_row, style_record

pytestmark = pytest.mark.integration

READ = "catalog-bulk:get"
READ_STATS = "GET /api/catalog-variant-bulk-create-jobs/{job_id}"


@pytest.fixture
def here(redis_url: str) -> Iterator[tuple[Runtime, KlaviyoSandbox]]:
    """This process as a batch worker with production's inline wait, and the Klaviyo sandbox it sends to."""
    with (klaviyo_applying_jobs_on_demand() as (url, sandbox),
          worker_runtime(redis_url, url, BCSYNC_MAX_INLINE_WAIT_SECONDS="1.5") as worker):
        yield worker, sandbox


def scheduled_reads(rt: Runtime) -> dict[str, tuple[float, list[Any]]]:
    """The variant job's reads waiting in the delayed schedule: entry -> (due, args)."""
    found = {}
    for member, due in rt.redis.zrange(rt.delayed.due_key, 0, -1, withscores=True):
        body = json.loads(rt.redis.hget(rt.delayed.payload_key, member))
        if body["task"] == CHECK_CATALOG_JOB and body["args"][0] == "variant-create":
            found[member] = (float(due), body["args"])
    return found


def reads(sandbox: KlaviyoSandbox) -> int:
    return int(sandbox.limiter.stats().get(READ_STATS, {}).get("received", 0))


def variants_created_and_applied(rt: Runtime, sandbox: KlaviyoSandbox) -> tuple[list[str], list[Any]]:
    """Two variants' creation job, applied by Klaviyo; its read-back's arguments."""
    plan = catalog_operations([style_record("T100", [sku_row("BLK", "S", "000000000011"),
                                                     sku_row("BLK", "M", "000000000012")])], Mapping())
    items = [op for op in plan.operations if op.kind == "catalog_item_upsert"]
    variants = [op for op in plan.operations if op.kind == "catalog_variant_upsert"]
    process_envelope(envelope(items, "batch"), rt)
    process_envelope(envelope(variants, "batch"), rt)
    sandbox.jobs.advance(sandbox.now(), finish=True)
    [(_, args)] = scheduled_reads(rt).values()
    return [op.payload["external_id"] for op in variants], args


def read_again(rt: Runtime, before: dict[str, Any]) -> tuple[float, list[Any]]:
    """The one read the read-back scheduled (the entry it ran from was taken by the worker that ran it)."""
    [again] = [entry for member, entry in scheduled_reads(rt).items() if member not in before]
    return again


@pytest.mark.parametrize("refusal", ["a short wait", "a wait beyond the inline cap", "a park"])
def test_a_refused_job_read_waits_in_the_schedule_for_its_turn_then_completes_the_job(
    here: tuple[Runtime, KlaviyoSandbox], refusal: str
) -> None:
    rt, sandbox = here
    ids, args = variants_created_and_applied(rt, sandbox)
    before = scheduled_reads(rt)
    if refusal == "a park":
        until = rt.limiter.server_time() + 600
        rt.limiter.park(READ, until, "test")
    else:
        until = rt.limiter.pause(READ, 1.0 if refusal == "a short wait" else 3.0)

    check_catalog_job(rt, *args)  # raises nothing: a refused read is not the task's failure

    assert reads(sandbox) == 0, "the read waited in the worker for its slot"
    due, again = read_again(rt, before)
    assert again == args and due >= until - 0.05
    assert rt.stores.stock.created("variant", ids) == set()

    if refusal == "a park":
        rt.limiter.unpark(READ)
    else:
        time.sleep(max(0.0, until - rt.limiter.server_time()) + 0.05)
    check_catalog_job(rt, *again)
    assert reads(sandbox) == 1
    assert rt.stores.stock.created("variant", ids) == set(ids)
    assert rt.dead_letters.list() == []
