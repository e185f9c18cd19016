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

from config.celery import make_app
from config.mapping import Mapping
from config.settings import Settings
from config.task_names import CHECK_CATALOG_JOB
from delivery.engine import process_envelope
from delivery.envelope import envelope
from delivery.runtime import Runtime, runtime
from delivery.senders.catalog import check_catalog_job
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.server import ServerThread
from sync.catalog.transform import catalog_operations
from tests.support.fleet import configured_like, fleet_env
from tests.unit.sync.stock.conftest import sku_row, style_record

pytestmark = pytest.mark.integration

READ = "catalog-bulk:get"
READ_STATS = "GET /api/catalog-variant-bulk-create-jobs/{job_id}"


@pytest.fixture
def klaviyo() -> Iterator[tuple[str, KlaviyoSandbox]]:
    app = create_app(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=3600))  # applied on demand
    with ServerThread(app) as server:
        yield server.url, app.state.sandbox


@pytest.fixture
def rt(redis_url: str, klaviyo: tuple[str, KlaviyoSandbox]) -> Iterator[Runtime]:
    env = fleet_env(redis_url, klaviyo[0], BCSYNC_MAX_INLINE_WAIT_SECONDS="1.5")
    settings = Settings.model_validate({k[len("BCSYNC_"):].lower(): v for k, v in env.items()
                                        if k.startswith("BCSYNC_")})
    with configured_like(env, make_app(settings)):
        yield runtime()


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
    rt: Runtime, klaviyo: tuple[str, KlaviyoSandbox], refusal: str
) -> None:
    sandbox = klaviyo[1]
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
