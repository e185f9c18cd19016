"""A message is acknowledged only once its work is durably done or handed on: a task raising an error no
rule names, a task killed by the hard time limit, and a message that kills its worker each end in the
delayed-retry schedule or a dead letter, and `bcsync dlq requeue` runs them once the cause is lifted.

Real worker processes (default lane, concurrency 2) run tasks that fail on purpose (tests/support/fault_tasks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from typer.testing import CliRunner

from config.celery import make_app
from config.settings import Settings
from state.dead_letters import DeadLetter, DeadLetters
from tests.support.fleet import WorkerProcess, configured_like, fleet_env, wait_for
from tests.support.redis_server import PrivateRedis
from workers.dlq_cli import app as dlq_app


class Fleet:
    def __init__(self, redis_url: str, soft_limit: int = 2, hard_limit: int = 3) -> None:
        self.env = fleet_env(redis_url, "http://127.0.0.1:9", BCSYNC_MAX_ATTEMPTS="3",
                             BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS=str(soft_limit),
                             BCSYNC_TASK_TIME_LIMIT_SECONDS=str(hard_limit), BCSYNC_WORKER_LOST_WAIT_SECONDS="0.5")
        self.prefix = self.env["BCSYNC_KEY_PREFIX"]
        values = {k[len("BCSYNC_"):].lower(): v for k, v in self.env.items() if k.startswith("BCSYNC_")}
        self.settings = Settings.model_validate(values)
        self.app = make_app(self.settings)
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.dlq = DeadLetters(self.redis, self.prefix)
        self.worker = WorkerProcess("default", self.env, concurrency=2, include=("tests.support.fault_tasks",))

    def send(self, task: str, token: str) -> None:
        self.app.send_task(f"bcsync.test.{task}", args=[token], queue="default")

    def runs(self, token: str) -> int:
        return int(self.redis.get(f"{self.prefix}:test:{token}:runs") or 0)

    def done(self) -> list[str]:
        return list(self.redis.lrange(f"{self.prefix}:test:done", 0, -1))

    def dead_letter_of(self, token: str) -> DeadLetter | None:
        return next((e for e in self.dlq.list("default") if e.args == [token]), None)

    def scheduled(self) -> int:
        keys = (f"{self.prefix}:delayed:due", f"{self.prefix}:delayed:inflight")
        return sum(int(self.redis.zcard(key)) for key in keys)


@contextmanager
def running(fleet: Fleet) -> Iterator[Fleet]:
    with configured_like(fleet.env, fleet.app):
        fleet.worker.start()
        try:
            yield fleet
        finally:
            fleet.worker.stop()
            fleet.redis.close()


@pytest.fixture(scope="module")
def fleet(redis_server: PrivateRedis) -> Iterator[Fleet]:
    with running(Fleet(redis_server.url)) as fleet:
        yield fleet


@pytest.fixture
def poison_fleet(redis_server: PrivateRedis) -> Iterator[Fleet]:
    # time limits far above the few seconds the pool takes to notice a dead process: the death, not the
    # hard time limit, is what each run ends in
    with running(Fleet(redis_server.url, soft_limit=50, hard_limit=60)) as fleet:
        yield fleet


def lift(fleet: Fleet, token: str) -> None:
    fleet.redis.set(f"{fleet.prefix}:test:{token}:lifted", "1")


def _requeue(entry_id: str) -> None:
    result = CliRunner().invoke(dlq_app, ["requeue", entry_id])
    assert result.exit_code == 0, result.output


def test_an_error_no_rule_names_is_retried_then_dead_lettered_with_its_traceback_and_requeued(fleet):
    fleet.send("fails_until_lifted", "bug")
    entry = wait_for(lambda: fleet.dead_letter_of("bug"), 60, message="the failing task's dead letter")
    assert isinstance(entry, DeadLetter)
    assert fleet.runs("bug") == 3, "retried through the schedule until max_attempts, then dead-lettered"
    assert entry.task == "bcsync.test.fails_until_lifted" and entry.lane == "default"
    assert len(entry.attempts) == 3 and "KeyError" in entry.reason
    assert entry.attempts[-1].traceback and "fails_until_lifted" in entry.attempts[-1].traceback
    assert fleet.scheduled() == 0
    lift(fleet, "bug")
    _requeue(entry.id)
    wait_for(lambda: "bug" in fleet.done(), 30, message="the requeued task to run")
    assert fleet.dead_letter_of("bug") is None


def test_a_task_killed_by_the_hard_time_limit_is_handed_to_the_schedule_not_acknowledged_away(fleet):
    fleet.send("hangs_until_lifted", "slow")
    # killed at 3 s, handed to the schedule, run again (and killed again) until the cause is lifted
    wait_for(lambda: fleet.runs("slow") >= 2, 30, message="the timed-out task to be run again")
    lift(fleet, "slow")
    wait_for(lambda: "slow" in fleet.done(), 30, message="the retried task to finish")
    assert fleet.runs("slow") >= 2 and fleet.dead_letter_of("slow") is None


def test_a_poison_message_that_kills_its_worker_three_times_is_dead_lettered_then_requeued(poison_fleet):
    fleet = poison_fleet
    fleet.send("kills_its_worker_until_lifted", "poison")
    entry = wait_for(lambda: fleet.dead_letter_of("poison"), 90, message="the poison message's dead letter")
    assert isinstance(entry, DeadLetter)
    assert fleet.runs("poison") == fleet.settings.poison_message_limit == 3
    assert "started 3 times without finishing" in entry.reason
    assert fleet.worker.process is not None and fleet.worker.process.poll() is None, "the worker survives"
    lift(fleet, "poison")
    _requeue(entry.id)
    wait_for(lambda: "poison" in fleet.done(), 30, message="the requeued message to run")
