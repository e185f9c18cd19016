"""A catalog job's read-back PATCHes a variant's newest figure when the job's rows may have left an older one in
Klaviyo (a creation carrying 0 before any figure was computed, an update job applied after a newer PATCH). When
Klaviyo does not take that PATCH at once - the fleet's budget for the endpoint spent, as in a first load's burst
of repairs - the figure is handed to delivery, never dropped: dropped, the variant kept the job's figure with no
work left (the first load's rare failure: a variant at 0, its truth 117).

The functions run in this process in the bad order, on a real private Redis and a Klaviyo sandbox on loopback
whose jobs apply only when the test says so."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from config.mapping import Mapping
from config.task_names import CHECK_CATALOG_JOB, DELIVER
from delivery.engine import process_envelope
from delivery.envelope import envelope
from delivery.runtime import Runtime
from delivery.senders.catalog import check_catalog_job
from sandbox.klaviyo.state import KlaviyoSandbox
from sync.catalog.transform import catalog_operations
from sync.operations import Operation
from sync.stock.urgency import inventory_key, inventory_operation
from sync.stock.versions import FigureVersion
from tests.integration.stock.conftest import variant_id
from tests.support.fleet import klaviyo_applying_jobs_on_demand, worker_runtime
from tests.unit.sync.stock.conftest import sku_row, style_record

pytestmark = pytest.mark.integration

PATCH = "catalog-variants:update"
OLD = FigureVersion.of(["2026-11-20T15:00:00Z#000001"]).encode()
NEW = FigureVersion.of(["2026-11-20T15:00:00Z#000001", "2026-11-20T15:00:02Z#000001"]).encode()


@pytest.fixture
def klaviyo() -> Iterator[tuple[str, KlaviyoSandbox]]:
    with klaviyo_applying_jobs_on_demand() as found:
        yield found


@pytest.fixture
def rt(redis_url: str, klaviyo: tuple[str, KlaviyoSandbox]) -> Iterator[Runtime]:
    """This process configured like a worker; a slot the limiter cannot give at once is refused at once."""
    with worker_runtime(redis_url, klaviyo[0], BCSYNC_MAX_INLINE_WAIT_SECONDS="0") as worker:
        yield worker


def run_scheduled(rt: Runtime, rounds: int = 20) -> None:
    """The delayed schedule's messages run here as a worker would once they are due (`rounds=1`: those scheduled
    now, not those they schedule), until none is left."""
    def run(task: str, args: list[Any], queue: str, task_id: str | None = None) -> None:
        if task == CHECK_CATALOG_JOB:
            check_catalog_job(rt, *args)
        elif task.startswith(DELIVER):
            process_envelope(args[0], rt)
        else:
            raise AssertionError(f"unexpected task {task}")

    for _ in range(rounds):
        due = list(rt.redis.zrange(rt.delayed.due_key, 0, -1))
        if not due:
            return
        rt.delayed.hasten(due, 0)
        rt.delayed.drain(run)
    if rounds > 1:
        raise AssertionError("the schedule never emptied")


def spend_the_budget_then(rt: Runtime, read_back: Any) -> None:
    """The read-back runs while the fleet's budget for single variant PATCHes is spent; then the budget comes
    back."""
    until = rt.limiter.pause(PATCH, 0.5)
    read_back()
    time.sleep(max(0.0, until - rt.limiter.server_time()) + 0.05)


def quantity(sandbox: KlaviyoSandbox, external_id: str) -> Any:
    return sandbox.catalog.variants[variant_id(external_id)].attributes.get("inventory_quantity")


def catalog() -> tuple[list[Operation], list[Operation]]:
    plan = catalog_operations([style_record("T100", [sku_row("BLK", "S", "000000000011"),
                                                     sku_row("BLK", "M", "000000000012")])], Mapping())
    return ([op for op in plan.operations if op.kind == "catalog_item_upsert"],
            [op for op in plan.operations if op.kind == "catalog_variant_upsert"])


def test_a_creation_carrying_0_gets_its_newest_figure_even_when_the_repair_patch_is_refused(
    rt: Runtime, klaviyo: tuple[str, KlaviyoSandbox]
) -> None:
    sandbox, state = klaviyo[1], rt.stores.stock
    items, variants = catalog()
    target = variants[0].payload["external_id"]
    process_envelope(envelope(items, "batch"), rt)  # the item exists
    # the variants' creation job leaves before any figure was computed: it carries 0
    process_envelope(envelope(variants, "batch"), rt)
    # the figure is computed (flows.stock.plan_figure) and its operation sent: skipped, the variant is unknown
    state.set_figure(target, 117, NEW)
    state.set_planned(target, 117, NEW)
    process_envelope(envelope([inventory_operation(target, 117, NEW, "batch")], "batch"), rt)
    assert rt.ledger.delivered([inventory_key(target)]) == {}
    sandbox.jobs.advance(sandbox.now(), finish=True)  # Klaviyo applies the job
    assert quantity(sandbox, target) == 0

    spend_the_budget_then(rt, lambda: run_scheduled(rt, rounds=1))  # the job's read-back
    assert state.created("variant", [target]) == {target}

    run_scheduled(rt)
    assert rt.delayed.pending() == 0 and rt.dead_letters.list() == []
    assert quantity(sandbox, target) == 117


def test_an_update_job_applied_after_a_newer_patch_is_repaired_even_when_the_repair_patch_is_refused(
    rt: Runtime, klaviyo: tuple[str, KlaviyoSandbox]
) -> None:
    sandbox, state = klaviyo[1], rt.stores.stock
    items, variants = catalog()
    process_envelope(envelope(items, "batch"), rt)
    process_envelope(envelope(variants, "batch"), rt)
    sandbox.jobs.advance(sandbox.now(), finish=True)
    run_scheduled(rt)  # created, no figure yet
    ids = [op.payload["external_id"] for op in variants]
    target = ids[0]
    # an older figure of each variant leaves in a bulk update job
    for external_id in ids:
        state.set_figure(external_id, 5, OLD)
        state.set_planned(external_id, 5, OLD)
    process_envelope(envelope([inventory_operation(e, 5, OLD, "batch") for e in ids], "batch"), rt)
    # a newer figure of one is PATCHed on the fast lane before Klaviyo applies the job
    state.set_figure(target, 117, NEW)
    state.set_planned(target, 117, NEW)
    process_envelope(envelope([inventory_operation(target, 117, NEW, "fast")], "fast"), rt)
    assert quantity(sandbox, target) == 117
    sandbox.jobs.advance(sandbox.now(), finish=True)  # the job's older row overwrites it
    assert quantity(sandbox, target) == 5

    spend_the_budget_then(rt, lambda: run_scheduled(rt, rounds=1))  # the job's read-back

    run_scheduled(rt)
    assert rt.delayed.pending() == 0 and rt.dead_letters.list() == []
    assert quantity(sandbox, target) == 117


def test_once_one_repair_is_refused_the_rest_of_the_job_are_handed_on_together_and_all_land(
    rt: Runtime, klaviyo: tuple[str, KlaviyoSandbox]
) -> None:
    sandbox, state = klaviyo[1], rt.stores.stock
    items, variants = catalog()
    ids = [op.payload["external_id"] for op in variants]
    process_envelope(envelope(items, "batch"), rt)
    process_envelope(envelope(variants, "batch"), rt)  # both created carrying 0
    for n, external_id in enumerate(ids):
        state.set_figure(external_id, 117 + n, NEW)
        state.set_planned(external_id, 117 + n, NEW)
    sandbox.jobs.advance(sandbox.now(), finish=True)
    patches = sandbox.limiter.stats()["PATCH /api/catalog-variants/{id}"]["received"]

    def read_back_then_look() -> None:
        run_scheduled(rt, rounds=1)
        handed = [args for _, args, _ in scheduled(rt)]
        assert len(handed) == 1, "one envelope for the job's refused repairs"
        assert sorted(op["payload"]["external_id"] for op in handed[0][0]["operations"]) == sorted(ids)

    spend_the_budget_then(rt, read_back_then_look)
    assert sandbox.limiter.stats()["PATCH /api/catalog-variants/{id}"]["received"] == patches, \
        "no repair waited for the budget in turn: none reached Klaviyo while it was spent"
    run_scheduled(rt, rounds=1)  # the two figures leave in one bulk update job
    sandbox.jobs.advance(sandbox.now(), finish=True)
    run_scheduled(rt)
    assert rt.delayed.pending() == 0 and rt.dead_letters.list() == []
    assert [quantity(sandbox, e) for e in ids] == [117, 118]


def scheduled(rt: Runtime) -> list[tuple[str, list[Any], str]]:
    """The delayed schedule's messages (task, args, queue), left where they are."""
    bodies = [json.loads(rt.redis.hget(rt.delayed.payload_key, member))
              for member in rt.redis.zrange(rt.delayed.due_key, 0, -1)]
    return [(body["task"], body["args"], body["queue"]) for body in bodies]
