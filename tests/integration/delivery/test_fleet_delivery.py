"""The first real flow end to end: profile upserts through real Celery workers on a real Redis, through the
fleet-wide limiter, into the Klaviyo sandbox over HTTP. No eager mode, no mocks."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import redis

from config.celery import make_app
from config.settings import Settings
from config.task_names import DELIVER
from delivery.envelope import envelope
from delivery.packing import group_for_delivery
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.dead_letters import DeadLetters
from state.lane_stats import LaneStats
from sync.operations import Operation
from tests.support.fleet import WorkerProcess, fleet_env, wait_for

pytestmark = pytest.mark.integration

PROFILE_IMPORT = "POST /api/profile-import"


def profile_op(n: int, lane: str = "fast", **extra: object) -> Operation:
    payload = {"external_id": f"C{n:05d}", "email": f"shopper{n}@example.com", "first_name": f"Ann{n}"}
    payload.update(extra)  # type: ignore[arg-type]
    return Operation(kind="profile_upsert", key=f"profile:C{n:05d}", lane=lane, payload=payload,
                     record=f"customer:C{n:05d}")


class Fleet:
    """A Klaviyo sandbox plus the env for worker processes, and helpers to publish and observe."""

    def __init__(self, redis_url: str, sandbox: ServerThread, **env: str) -> None:
        self.sandbox = sandbox
        self.env = fleet_env(redis_url, sandbox.url, **env)
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.workers: list[WorkerProcess] = []
        self.prefix = self.env["BCSYNC_KEY_PREFIX"]

    def worker(self, lane: str, concurrency: int = 2) -> WorkerProcess:
        """A worker process for `lane`; every lane runs at concurrency 2 by default, as the fleet does (its races
        show only with more than one pool process)."""
        w = WorkerProcess(lane, self.env, concurrency).start()
        self.workers.append(w)
        return w

    def submit(self, ops: list[Operation]) -> None:
        """Publish exactly as producers do, from a process configured like the workers."""
        settings = Settings(**{k[len("BCSYNC_"):].lower(): v for k, v in self.env.items()
                               if k.startswith("BCSYNC_")})
        app = make_app(settings)
        with app.producer_or_acquire() as producer:
            for env in group_for_delivery(ops):
                app.send_task(DELIVER, args=[env], queue=env["lane"], producer=producer)

    def publish_single(self, ops: list[Operation]) -> None:
        """One message per operation even on the batch lane (to load one endpoint from two lanes)."""
        settings = Settings(**{k[len("BCSYNC_"):].lower(): v for k, v in self.env.items()
                               if k.startswith("BCSYNC_")})
        app = make_app(settings)
        with app.producer_or_acquire() as producer:
            for op in ops:
                app.send_task(DELIVER, args=[envelope([op], op.lane)], queue=op.lane, producer=producer)

    def state(self) -> dict:
        return httpx.get(f"{self.sandbox.url}/_sandbox/state", timeout=30).json()

    def stats(self) -> dict:
        return httpx.get(f"{self.sandbox.url}/_sandbox/stats", timeout=30).json()

    def external_ids(self) -> list[str]:
        return [p.get("external_id") for p in self.state()["profiles"].values()]

    def dead_letters(self) -> int:
        return sum(int(self.redis.zcard(f"{self.prefix}:dlq:{lane}")) for lane in ("fast", "default", "batch"))

    def faults(self, **settings: object) -> None:
        httpx.post(f"{self.sandbox.url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.redis.close()


@pytest.fixture
def fleet_factory(redis_url: str) -> Iterator[Callable[..., Fleet]]:
    made: list[tuple[Fleet, ServerThread]] = []

    def make(sandbox_config: KlaviyoSandboxConfig | None = None, **env: str) -> Fleet:
        server = ServerThread(create_app(sandbox_config or KlaviyoSandboxConfig(rate_limits_enabled=False)))
        server.start()
        fleet = Fleet(redis_url, server, **env)
        made.append((fleet, server))
        return fleet

    yield make
    for fleet, server in made:
        fleet.stop()
        server.stop()


def test_profile_upserts_land_once_through_the_fast_lane(fleet_factory):
    fleet = fleet_factory()
    fleet.worker("fast")
    fleet.submit([profile_op(n) for n in range(20)])
    wait_for(lambda: len(fleet.external_ids()) == 20, 60, message="20 profiles in the sandbox")
    assert sorted(fleet.external_ids()) == [f"C{n:05d}" for n in range(20)]
    assert fleet.stats()["duplicates_suppressed"] == 0
    assert fleet.dead_letters() == 0
    # the ledger recorded every write; the lane's counters saw them
    assert all(fleet.redis.exists(f"{fleet.prefix}:ledger:profile:C{n:05d}") for n in range(20))
    assert LaneStats(fleet.redis, fleet.prefix).summary(("fast",))["fast"]["delivered"] == 20


@pytest.mark.parametrize("every_task", [False, True])
def test_celerys_line_per_task_is_logged_only_when_asked(fleet_factory, every_task):
    """BCSYNC_LOG_EVERY_TASK: Celery's "received" and "succeeded in" lines, from the worker's main process and
    from its pool processes (which inherit the levels when the pool forks)."""
    fleet = fleet_factory(BCSYNC_LOG_EVERY_TASK=str(every_task).lower())
    worker = fleet.worker("fast")
    fleet.submit([profile_op(n) for n in range(3)])
    wait_for(lambda: len(fleet.external_ids()) == 3, 60, message="3 profiles in the sandbox")
    wait_for(lambda: worker.output().count("succeeded in") >= 1 or not every_task, 10, message="the lines")
    log = worker.output()
    assert (" received" in log and "succeeded in" in log) is every_task
    assert (" received" in log or "succeeded in" in log) is every_task
    assert " ready." in log  # the worker's own INFO lines are still written


def test_a_429_storm_loses_nothing_and_dead_letters_nothing(fleet_factory):
    # The sandbox allows 3/s and 30/min on profile-import; the fleet believes in twice that, so Klaviyo
    # (the sandbox) answers 429s and the fleet must pause the endpoint fleet-wide and come back.
    fleet = fleet_factory(
        KlaviyoSandboxConfig(rate_limit_scale=0.04),
        BCSYNC_RATE_LIMIT_SCALE="0.08", BCSYNC_RATE_SHARE="1.0", BCSYNC_FAST_RESERVE="0",
    )
    fleet.worker("fast", concurrency=2)
    fleet.submit([profile_op(n) for n in range(40)])
    wait_for(lambda: len(fleet.external_ids()) == 40, 200, interval=0.5, message="40 profiles despite 429s")
    stats = fleet.stats()["endpoints"][PROFILE_IMPORT]
    assert stats["throttled"] > 0, "the storm did not happen: the test proves nothing"
    assert fleet.dead_letters() == 0
    assert stats["max_burst_window"] <= 3 and stats["max_steady_window"] <= 30
    # Each 429 pauses the endpoint for the whole fleet: the 429s stay few (bounded by the workers in flight
    # per window), instead of a retry loop hammering the API.
    windows = math.ceil(40 / 30) + 1
    assert stats["throttled"] <= 2 * 2 * windows + 4
    assert fleet.stats()["duplicates_suppressed"] == 0


def test_a_permanent_400_is_dead_lettered_with_klaviyos_error_and_requeue_delivers_it(fleet_factory):
    fleet = fleet_factory()
    fleet.worker("fast")
    fleet.faults(reject_rules=[{"endpoint": PROFILE_IMPORT, "status": 400, "code": "invalid",
                                "detail": "The phone number provided is not valid.",
                                "pointer": "/data/attributes/phone_number"}])
    fleet.submit([profile_op(1)])
    wait_for(lambda: fleet.dead_letters() == 1, 60, message="a dead letter")
    dlq = DeadLetters(fleet.redis, fleet.prefix)
    (entry,) = dlq.list("fast")
    assert entry.code == "invalid" and entry.records == ["customer:C00001"]
    assert entry.attempts[-1].status == 400
    assert entry.attempts[-1].errors[0]["pointer"] == "/data/attributes/phone_number"
    assert fleet.external_ids() == []
    # the cause is fixed (the fault is lifted); the operator requeues through the CLI
    fleet.faults(reject_rules=[])
    listed = subprocess.run([sys.executable, "-m", "workers.cli", "dlq", "list", "--json"], env=fleet.env,
                            capture_output=True, text=True, timeout=60)
    assert [e["id"] for e in json.loads(listed.stdout)] == [entry.id]
    result = subprocess.run([sys.executable, "-m", "workers.cli", "dlq", "requeue", entry.id], env=fleet.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: fleet.external_ids() == ["C00001"], 60, message="the requeued profile")
    assert fleet.dead_letters() == 0


def _in_flight_then_kill(fleet: Fleet, target: Callable[[WorkerProcess], int]) -> WorkerProcess:
    fleet.faults(latency_ms=2500)
    worker = fleet.worker("fast")
    fleet.submit([profile_op(7)])
    # wait until the request is inside the sandbox (received, not answered)
    wait_for(lambda: fleet.stats()["endpoints"].get(PROFILE_IMPORT, {}).get("received", 0) >= 1, 30,
             message="the upsert to be in flight")
    os.kill(target(worker), signal.SIGKILL)
    fleet.faults(latency_ms=0)
    return worker


def _child_talking_to(worker: WorkerProcess, url: str) -> int:
    """The pool process with a connection open to `url`: the one whose request is in flight. With two pool
    processes the first listed may be the idle one, and killing it would leave the request to finish."""
    port = urlsplit(url).port
    talking = [pid for pid in worker.pool_children()
               if any(c.raddr and c.raddr.port == port for c in psutil.Process(pid).net_connections("tcp"))]
    assert len(talking) == 1, f"expected one pool process talking to {url}, found {talking}"
    return talking[0]


def test_sigkill_of_the_pool_child_redelivers_and_the_profile_lands_once(fleet_factory):
    fleet = fleet_factory()
    _in_flight_then_kill(fleet, lambda w: _child_talking_to(w, fleet.sandbox.url))
    # the main process notices the lost child and re-queues the message (reject_on_worker_lost)
    wait_for(lambda: fleet.stats()["endpoints"][PROFILE_IMPORT]["received"] >= 2, 60,
             message="the redelivered upsert")
    wait_for(lambda: fleet.external_ids() == ["C00007"], 60, message="one profile")
    time.sleep(1.0)
    assert fleet.external_ids() == ["C00007"] and fleet.dead_letters() == 0


def test_sigkill_of_the_main_worker_redelivers_after_the_visibility_timeout(fleet_factory):
    fleet = fleet_factory()
    dead = _in_flight_then_kill(fleet, lambda w: w.pid)
    dead.stop()  # reap the orphaned pool child too
    fleet.worker("fast")  # a replacement worker: Redis returns the unacked message after the timeout
    wait_for(lambda: fleet.stats()["endpoints"][PROFILE_IMPORT]["received"] >= 2, 90,
             message="redelivery after the visibility timeout")
    wait_for(lambda: fleet.external_ids() == ["C00007"], 60, message="one profile")
    assert fleet.dead_letters() == 0


def test_two_workers_on_one_lane_stay_within_limits_and_use_the_budget(fleet_factory):
    # Sandbox: 75/s, 750/min scaled by 0.04 -> 3/s, 30/min. Fleet share 0.8 (floor and ceiling: no growth) ->
    # 2/s, 24/min.
    fleet = fleet_factory(KlaviyoSandboxConfig(rate_limit_scale=0.04), BCSYNC_RATE_LIMIT_SCALE="0.04",
                          BCSYNC_RATE_SHARE="0.8", BCSYNC_RATE_SHARE_MAX="0.8", BCSYNC_FAST_RESERVE="0")
    fleet.worker("fast")
    fleet.worker("fast")
    budget_minute, budget_second, klaviyo_second = 24, 2, 3
    total = 2 * budget_minute  # more than one minute window holds: one window is filled completely
    fleet.submit([profile_op(n) for n in range(total)])
    own_seconds: dict[str, int] = {}  # the limiter's own second windows (they live 6 s): requests taken

    def every_profile() -> bool:
        for key in fleet.redis.scan_iter(f"{fleet.prefix}:rl:win:*:w1000:*", count=1000):
            own_seconds[key] = max(own_seconds.get(key, 0), int(fleet.redis.hget(key, "t") or 0))
        return len(fleet.external_ids()) == total

    wait_for(every_profile, 150, interval=0.5, message="every profile")
    stats = fleet.stats()["endpoints"][PROFILE_IMPORT]
    assert stats["throttled"] == 0, "the fleet exceeded the sandbox's limits"
    # The fleet keeps 2 in each of its own seconds and 3 in any two together (limiter_rules.straddle_admits),
    # so a Klaviyo second of any phase - or a request taken at .99 that arrives at .01 - sees at most 3.
    assert max(own_seconds.values()) == budget_second, own_seconds
    assert stats["max_burst_window"] <= klaviyo_second
    assert stats["max_steady_window"] <= budget_minute
    # a limiter that is merely slow would not fill a minute window to 80% of the budget
    assert stats["max_steady_window"] >= 0.8 * budget_minute
    assert fleet.stats()["duplicates_suppressed"] == 0


def test_a_saturating_batch_backlog_does_not_stop_the_fast_lane(fleet_factory):
    # One endpoint, two lanes: batch may never take the fast lane's reserve of each window.
    fleet = fleet_factory(KlaviyoSandboxConfig(rate_limit_scale=0.04), BCSYNC_RATE_LIMIT_SCALE="0.04",
                          BCSYNC_RATE_SHARE="1.0", BCSYNC_FAST_RESERVE="0.34")
    fleet.worker("batch")
    fleet.publish_single([profile_op(n, lane="batch") for n in range(1000, 1200)])
    wait_for(lambda: len(fleet.external_ids()) >= 5, 60, message="the batch lane to start")
    fleet.worker("fast")
    fleet.submit([profile_op(n, lane="fast") for n in range(5)])
    wait_for(lambda: {f"C{n:05d}" for n in range(5)} <= set(fleet.external_ids()), 90,
             message="fast-lane profiles while batch is saturated")
    backlog = 200 - sum(1 for x in fleet.external_ids() if x >= "C01000")
    assert backlog > 0, "the batch backlog drained first: the test proves nothing"
    assert fleet.stats()["endpoints"][PROFILE_IMPORT]["throttled"] == 0
