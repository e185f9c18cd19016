"""A fast-lane worker SIGKILLed (main process and pool) with consent changes in flight: `bcsync status` shows
them unacknowledged with their age meanwhile, and a new worker delivers them within visibility timeout +
redelivery check. A live worker's long task is never redelivered, however short the visibility timeout:
the worker heartbeat (delivery/heartbeat.py) vouches for it. Real workers, real Redis, the Klaviyo sandbox."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from config.settings import reload_settings
from state.factory import reset_stores
from state.ledger import Ledger
from sync.operations import Operation
from tests.integration.delivery.test_fleet_delivery import PROFILE_IMPORT, Fleet, profile_op
from tests.support.fleet import wait_for
from workers.status import collect_status

pytestmark = pytest.mark.integration

SUBSCRIBE = "POST /api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "POST /api/profile-subscription-bulk-delete-jobs"


@dataclass(frozen=True)
class Timing:
    """The three settings the recovery bound is made of (the production defaults: 20 / 5 / 2)."""

    visibility: int
    check: int
    heartbeat: float

    @property
    def bound(self) -> float:
        return self.visibility + self.check

    def env(self) -> dict[str, str]:
        return {"BCSYNC_VISIBILITY_TIMEOUT_SECONDS": str(self.visibility),
                "BCSYNC_REDELIVERY_CHECK_SECONDS": str(self.check),
                "BCSYNC_UNACKED_HEARTBEAT_SECONDS": str(self.heartbeat)}


FAST = Timing(visibility=4, check=1, heartbeat=0.5)


def consent_changes() -> list[Operation]:
    """A subscribe and another customer's unsubscribe: one message each on the fast lane."""
    subscribe = Operation(
        kind="subscribe", key="consent:email:C00001", lane="fast", version="2026-11-26T10:00:00Z#000001",
        record="customer:C00001",
        payload={"channel": "email", "profile": {"email": "shopper1@example.com"},
                 "list_id": None, "custom_source": "Blue Cherry ERP", "consented_at": None,
                 "historical_import": False})
    unsubscribe = Operation(
        kind="unsubscribe", key="consent:email:C00002", lane="fast", version="2026-11-26T10:05:00Z#000001",
        record="customer:C00002",
        payload={"channel": "email", "profile": {"email": "shopper2@example.com"}, "list_id": None})
    return [subscribe, unsubscribe]


def received(fleet: Fleet, endpoint: str) -> int:
    return int(fleet.stats()["endpoints"].get(endpoint, {}).get("received", 0))


def fleet_status(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`collect_status()` in this process, configured like the fleet's processes."""
    with monkeypatch.context() as patch:
        for name, value in fleet.env.items():
            if name.startswith("BCSYNC_"):
                patch.setenv(name, value)
        reload_settings()
        reset_stores()
        try:
            return collect_status()
        finally:
            reset_stores()


@pytest.fixture(autouse=True)
def _forget_fleet_settings() -> Iterator[None]:
    yield
    reload_settings()  # the environment is the test process's own again
    reset_stores()


def kill_and_recover(fleet: Fleet, timing: Timing, status: Any = None) -> float:
    """Consent changes in flight (Klaviyo slow to answer) when a fast worker's whole process group is
    SIGKILLed, with a second fast worker idle. Returns seconds from the kill until both are delivered again
    (received by Klaviyo and in the ledger). `status(seconds_since_kill)` runs while they wait unacknowledged.
    The second worker is started before the kill, so the time measured is the recovery, not a start-up."""
    changes = consent_changes()
    # Klaviyo takes the consent changes in but holds its answers back until the client gives up
    fleet.faults(slow_rate=1.0, slow_seconds=60, endpoints=[SUBSCRIBE, UNSUBSCRIBE])
    doomed = fleet.worker("fast", concurrency=2)
    fleet.publish_single(changes)
    wait_for(lambda: received(fleet, SUBSCRIBE) >= 1 and received(fleet, UNSUBSCRIBE) >= 1, 30,
             message="both consent changes in flight")
    fleet.worker("fast", concurrency=2)
    fleet.faults(slow_rate=0.0)  # for the redelivered requests; the first ones stay held until the kill
    os.killpg(doomed.pid, signal.SIGKILL)
    killed = time.monotonic()
    assert doomed.process is not None
    doomed.process.wait(timeout=10)
    if status is not None:
        status(time.monotonic() - killed)
    ledger = Ledger(fleet.redis, fleet.prefix)
    wait_for(lambda: all(ledger.get(op.key) for op in changes)
             and received(fleet, SUBSCRIBE) >= 2 and received(fleet, UNSUBSCRIBE) >= 2,
             timing.bound + 60, interval=0.05, message="the consent changes delivered again")
    recovered = time.monotonic() - killed
    print(f"\nrecovery after SIGKILL: {recovered:.1f} s (visibility {timing.visibility} s + check "
          f"{timing.check} s = bound {timing.bound} s; heartbeat {timing.heartbeat} s)")
    return recovered


def test_consent_in_flight_on_a_killed_worker_shows_unacked_and_is_delivered_within_the_bound(
    fleet_factory, monkeypatch
):
    fleet = fleet_factory(**FAST.env())
    seen: list[dict[str, Any]] = []

    def check_status(since_kill: float) -> None:
        data = fleet_status(fleet, monkeypatch)
        assert data["queues"]["fast"] == 0  # "0 queued": without the unacked column nothing showed them
        assert data["unacked"]["fast"]["count"] == 2, data["unacked"]
        assert data["unacked"]["fast"]["oldest_seconds"] >= since_kill
        time.sleep(3 * FAST.heartbeat + 0.2)  # no heartbeat vouches for them any more
        later = fleet_status(fleet, monkeypatch)["unacked"]["fast"]
        assert later["count"] == 2 and later["orphaned"] == 2, later
        assert later["oldest_seconds"] > data["unacked"]["fast"]["oldest_seconds"]
        seen.append(later)

    recovered = kill_and_recover(fleet, FAST, check_status)
    assert seen, "the status was never checked"
    # not before the timeout (nothing else put them back; a late last heartbeat may start it early), and
    # within the documented bound plus the time a delivery takes
    assert FAST.visibility - 3 * FAST.heartbeat <= recovered <= FAST.bound + 3.0
    assert fleet_status(fleet, monkeypatch)["unacked"]["fast"]["count"] == 0
    assert fleet.dead_letters() == 0


def test_a_live_workers_task_longer_than_the_visibility_timeout_is_not_redelivered(fleet_factory, monkeypatch):
    fleet = fleet_factory(**FAST.env(), BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS="20",
                          BCSYNC_TASK_TIME_LIMIT_SECONDS="25")
    answer_after = 2 * FAST.bound  # Klaviyo answers only after two visibility timeouts and sweeps
    fleet.faults(latency_ms=answer_after * 1000, endpoints=[PROFILE_IMPORT])
    fleet.worker("fast", concurrency=2)
    fleet.worker("fast", concurrency=2)  # idle, sweeping: it would take the message if it were restored
    fleet.submit([profile_op(1)])
    wait_for(lambda: received(fleet, PROFILE_IMPORT) >= 1, 30, message="the upsert in flight")
    started = time.monotonic()
    ledger = Ledger(fleet.redis, fleet.prefix)
    oldest = 0.0
    while not ledger.get("profile:C00001"):
        assert time.monotonic() - started < answer_after + 30, "the upsert never finished"
        fast = fleet_status(fleet, monkeypatch)["unacked"]["fast"]
        if fast["count"]:  # held and vouched for: never orphaned while its worker lives
            assert fast["count"] == 1 and fast["orphaned"] == 0, fast
            oldest = max(oldest, fast["oldest_seconds"])
        time.sleep(0.5)
    time.sleep(1.0)  # a restored message would have been taken and sent by the idle worker long ago
    assert oldest > 2 * FAST.visibility, "the task did not outlast the visibility timeout: proves nothing"
    assert received(fleet, PROFILE_IMPORT) == 1, "a live worker's message was redelivered"
    assert fleet.external_ids() == ["C00001"] and fleet.dead_letters() == 0
