"""The task base class: infrastructure trouble requeues the message instead of losing it (pure wrapping logic)."""

from __future__ import annotations

import pytest
import redis
from celery.exceptions import Reject

import tasks.customers  # noqa: F401  registers its tasks on the app
import tasks.delivery  # noqa: F401  registers its tasks on the app
from config.celery import app
from tasks import base


def test_every_fleet_task_uses_the_base_class():
    ours = [t for name, t in app.tasks.items() if name.startswith("bcsync.")]
    assert ours and all(isinstance(t, base.FleetTask) for t in ours)


def test_a_redis_blip_rejects_with_requeue_and_other_errors_propagate(monkeypatch):
    monkeypatch.setattr(base, "REQUEUE_PAUSE_SECONDS", 0)
    calls = {"n": 0}

    @app.task(name="bcsync.test.flaky", bind=True)
    def flaky(self, kind: str) -> str:
        calls["n"] += 1
        if kind == "redis":
            raise redis.ConnectionError("Connection refused")
        if kind == "bug":
            raise KeyError("external_id")
        return "ok"

    assert flaky("fine") == "ok"
    with pytest.raises(Reject) as rejected:
        flaky("redis")
    assert rejected.value.requeue is True
    with pytest.raises(KeyError):
        flaky("bug")
    assert calls["n"] == 3
