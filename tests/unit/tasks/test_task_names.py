"""Messages already in queues, in the delayed-retry schedule and in dead letters name their task and carry
their arguments as the fleet wrote them before the layout moved (`tasks/` split into `flows/`, `delivery/`,
`state/`). These pin that wire contract: the same names, the same argument lists, the same envelope."""

from __future__ import annotations

import inspect
import json
from typing import get_args

from config import task_names
from config.celery import TASK_MODULES, app
from delivery.envelope import Envelope, envelope
from sync.operations import Operation, OperationKind

# task name -> its parameters, as registered before the move (commit 585773f)
WIRE_CONTRACT = {
    "bcsync.deliver": ["env"],
    "bcsync.check_profile_import_job": ["job_id", "operations", "lane"],
    "bcsync.check_catalog_job": ["kind", "job_id", "operations", "lane", "carried"],
    "bcsync.handle_change": ["body"],
    "bcsync.handle_customer_changes": ["events"],
    "bcsync.daily_profile_batch": ["force"],
    "bcsync.customers.duplicate_profile": ["operation", "duplicate_profile_id"],
    "bcsync.orders.flush_bulk": [],
    "bcsync.flush_stock": [],
    "bcsync.stock_records": ["resource", "records", "observed_at"],
}
# the delivery task under one name per operation kind (Flower shows what is delivered), added later
DELIVER_BY_KIND = {f"bcsync.deliver.{kind}": ["env"] for kind in get_args(OperationKind)}
# tasks added since the move: their messages are a wire contract from now on too
ADDED = {
    "bcsync.customers.guard_consent": ["events"],
    "bcsync.check_consent_jobs": ["jobs", "lane"],
    "bcsync.orders.resync": ["numbers", "lane", "backfill"],
    "bcsync.orders.release": [],
    "bcsync.stock.release_scan": ["scan"],
    "bcsync.stock.expire_scans": [],
    "bcsync.stock.recompute_sweep": ["digest"],
    "bcsync.monitor.freshness": [],
    "bcsync.reconcile": ["areas", "recent", "nightly"],
    "bcsync.report.attribution": [],
}

# an envelope as the fleet published it before the move, e.g. held in the delayed schedule
OLD_ENVELOPE = {
    "id": "0f3c2a", "lane": "fast", "kind": "event",
    "operations": [{"kind": "event", "key": "event:Placed Order:SO1", "lane": "fast",
                    "payload": {"metric": "Placed Order", "profile": {"external_id": "C1"}, "properties": {},
                                "unique_id": "SO1"}, "version": None, "record": "order:SO1"}],
    "attempts": [{"at": 1.0, "status": 503, "endpoint": "events", "error": "unavailable", "errors": []}],
    "created": 1.0,
}


def test_every_task_name_of_the_old_layout_is_still_registered_with_the_same_arguments() -> None:
    for module in TASK_MODULES:
        __import__(module)
    for name, params in (WIRE_CONTRACT | ADDED).items():
        assert name in app.tasks, f"{name} is no longer registered: its queued messages would be lost"
        # parameters added since come after the old ones and have defaults: an old message still fits
        signature = inspect.signature(app.tasks[name].run).parameters
        assert list(signature)[: len(params)] == params, name
        added = list(signature.values())[len(params):]
        assert all(p.default is not inspect.Parameter.empty for p in added), name


def test_the_task_names_module_names_exactly_the_registered_fleet_tasks() -> None:
    for module in TASK_MODULES:
        __import__(module)
    ours = {name for name in app.tasks if name.startswith("bcsync.") and not name.startswith("bcsync.test")}
    assert ours == set(task_names.ALL) == set(WIRE_CONTRACT) | set(DELIVER_BY_KIND) | set(ADDED)


def test_every_operation_kind_has_its_delivery_task_and_the_old_name_runs_the_same_function() -> None:
    __import__("tasks.delivery")
    assert set(task_names.DELIVERY_KINDS) == set(get_args(OperationKind))
    for name, params in DELIVER_BY_KIND.items():
        # parameters added since come after the old ones and have defaults: an old message still fits
        signature = inspect.signature(app.tasks[name].run).parameters
        assert list(signature)[: len(params)] == params, name
        added = list(signature.values())[len(params):]
        assert all(p.default is not inspect.Parameter.empty for p in added), name
        assert app.tasks[name].run is app.tasks["bcsync.deliver"].run
    assert task_names.deliver_task("subscribe") == "bcsync.deliver.subscribe"
    assert task_names.deliver_task("a kind of a newer version") == "bcsync.deliver"


def test_an_envelope_written_before_the_move_reads_and_writes_back_unchanged() -> None:
    env = Envelope.from_message(json.loads(json.dumps(OLD_ENVELOPE)))
    assert env.lane == "fast" and env.failures() == 1
    Operation.model_validate(env.operations[0])
    assert env.to_message() == OLD_ENVELOPE


def test_a_new_envelope_has_the_old_wire_shape() -> None:
    op = Operation.model_validate(OLD_ENVELOPE["operations"][0])
    assert set(envelope([op], "fast")) == set(OLD_ENVELOPE)
