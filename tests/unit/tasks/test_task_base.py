"""The task base class: every fleet task uses it. What it does with a failing message is proven with real
workers in tests/integration/delivery/test_nothing_acknowledged_until_safe.py; here, the plain call path."""

from __future__ import annotations

import pytest

import tasks.customers  # noqa: F401  registers its tasks on the app
import tasks.delivery  # noqa: F401  registers its tasks on the app
from config.celery import app
from tasks import base


def test_every_fleet_task_uses_the_base_class():
    ours = [t for name, t in app.tasks.items() if name.startswith("bcsync.")]
    assert ours and all(isinstance(t, base.FleetTask) for t in ours)


def test_a_direct_call_outside_a_worker_runs_plainly_and_raises():
    @app.task(name="bcsync.test.direct")
    def direct(kind: str) -> str:
        if kind == "bug":
            raise KeyError("external_id")
        return "ok"

    assert direct("fine") == "ok"
    with pytest.raises(KeyError):  # no message to hand on: the caller sees the error
        direct("bug")


def test_only_the_beat_ticks_are_left_to_their_next_tick():
    """Every task the workers load (not only those other tests happened to import) retries through the delayed
    schedule, except the beat ticks that the next tick redoes anyway."""
    import importlib  # noqa: PLC0415

    from config.celery import TASK_MODULES  # noqa: PLC0415

    for module in TASK_MODULES:
        importlib.import_module(module)  # registers its tasks on the app, as a worker does
    plain = {name for name, t in app.tasks.items() if name.startswith("bcsync.") and not t.retry_through_schedule}
    assert plain == {"bcsync.flush_stock", "bcsync.stock.expire_scans", "bcsync.monitor.freshness"}
