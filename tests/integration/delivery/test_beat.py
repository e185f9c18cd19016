"""The beat schedule cannot run twice: two real `bcsync beat` processes on one Redis, one holds the RedBeat
lock and publishes, the other waits; when the holder is SIGKILLed the standby takes over within about one
lock timeout (BCSYNC_BEAT_LOCK_TIMEOUT_SECONDS, short here) and the schedule goes on, once per interval.
A beat outlives a Redis restart: Redis goes away under a running beat and comes back empty, and the stock
figures beat's `flush-stock` sends reach Klaviyo again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from state.beat import BeatHeartbeat
from tests.integration.stock.conftest import StockFleet, inventory_row
from tests.support.fleet import ROOT, WorkerProcess, fleet_env, wait_for
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration

TASK = "bcsync.flush_stock"  # config/celery.py: every 1 s on the batch queue
INTERVAL = 1.0
LOCK_TIMEOUT = 6
ACQUIRED = "beat: Acquired lock"
SENDING = f"Sending due task flush-stock ({TASK})"


class Beat(WorkerProcess):
    """`bcsync beat` as a child process; stopped (and its log removed) like a worker, by its pid."""

    def start(self, timeout: float = 60.0) -> Beat:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "beat", "--loglevel", "INFO"], cwd=ROOT, env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def holds_lock(self) -> bool:
        return ACQUIRED in self.output()

    def sends(self) -> int:
        return self.output().count(SENDING)


@pytest.fixture
def beats(redis_url: str) -> Iterator[tuple[list[Beat], dict[str, str]]]:
    env = fleet_env(redis_url, "http://127.0.0.1:9", BCSYNC_BEAT_LOCK_TIMEOUT_SECONDS=str(LOCK_TIMEOUT))
    started: list[Beat] = []
    yield started, env
    for beat in started:
        beat.stop()


def published(client: redis.Redis, prefix: str) -> int:
    """Messages of the scheduled task waiting on the batch queue (no worker consumes them here)."""
    raw = client.lrange(f"{prefix}:broker:batch", 0, -1)
    return sum(1 for message in raw if json.loads(message)["headers"]["task"] == TASK)


def publishes_during(client: redis.Redis, prefix: str, seconds: float) -> tuple[int, float]:
    before, start = published(client, prefix), time.monotonic()
    time.sleep(seconds)  # observing a rate needs a window; the bound below allows slack both ways
    return published(client, prefix) - before, time.monotonic() - start


def test_two_beats_publish_once_per_interval_and_the_standby_takes_over(beats, redis_client):
    started, env = beats
    prefix = env["BCSYNC_KEY_PREFIX"]
    first = Beat("beat", env).start()
    started.append(first)
    wait_for(lambda: first.holds_lock() and first.sends() >= 1, 30, message="the first beat to hold the lock")
    second = Beat("beat", env).start()
    started.append(second)
    wait_for(lambda: "beat: Starting..." in second.output(), 30, message="the second beat to start")

    count, window = publishes_during(redis_client, prefix, 6.0)
    # one beat publishing once per interval; two would publish about twice as many
    assert 2 <= count <= window / INTERVAL + 2, (count, window)
    assert not second.holds_lock() and second.sends() == 0, "the standby beat published"
    assert redis_client.exists(f"{prefix}:redbeat::lock")

    first.kill(signal.SIGKILL)  # the holder dies without releasing the lock
    assert first.process is not None
    first.process.wait()
    wait_for(lambda: second.holds_lock() and second.sends() >= 1, LOCK_TIMEOUT + 20,
             message="the standby beat to take over")
    count, window = publishes_during(redis_client, prefix, 4.0)
    assert 1 <= count <= window / INTERVAL + 2, (count, window)


@pytest.fixture
def restartable_redis() -> Iterator[PrivateRedis]:
    """A redis-server of this test only (the session's one is shared and must not restart)."""
    server = PrivateRedis.start()
    yield server
    server.stop()


def stock_row(oh: int, minute: int) -> dict:
    return inventory_row("TEE", "BLK", "M", "WH1", oh=oh, last_mod=f"2026-11-20 10:{minute:02d}:00")


def test_beat_outlives_a_redis_restart_and_stock_reaches_klaviyo_after_it(restartable_redis, tmp_path):
    variant = "TEE-BLK---M"  # not high-demand: its figures wait in the pending set until flush-stock sends them
    fleet = StockFleet(restartable_redis.url, KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.1),
                       tmp_path, BCSYNC_BEAT_LOCK_TIMEOUT_SECONDS=str(LOCK_TIMEOUT))
    beat = Beat("beat", fleet.env)
    try:
        fleet.seed_variants("TEE-BLK", [variant], quantity=0)
        fleet.worker("batch", concurrency=2)
        beat.start()
        heartbeat = BeatHeartbeat(fleet.redis, fleet.prefix)
        fleet.records("inventory", [stock_row(3, 0)], "2026-11-20T18:00:00+00:00", "batch")
        wait_for(lambda: fleet.quantity(variant) == 3, 30, message="the figure before the restart")
        assert heartbeat.last_tick() is not None

        restartable_redis.halt()  # Redis away under the running beat: its ticks fail, a few in a row
        wait_for(lambda: beat.output().count("Redis unreachable") >= 3 or beat.process.poll() is not None, 20,
                 message="beat to meet the outage")
        restartable_redis.resume()  # back, and empty: no lock, no schedule entries, no fleet state
        resumed_at = time.time()
        # the fleet's knowledge that Klaviyo holds the variant went with Redis (a style re-read restores it)
        fleet.state.mark_created("item", ["TEE-BLK"])
        fleet.state.mark_created("variant", [variant])
        fleet.records("inventory", [stock_row(5, 5)], "2026-11-20T18:05:00+00:00", "batch")

        def delivered_or_beat_gone() -> bool:
            return fleet.quantity(variant) == 5 or beat.process.poll() is not None

        wait_for(delivered_or_beat_gone, 30, message="the figure made after the restart")
        assert beat.process.poll() is None, f"beat exited:\n{beat.output()[-3000:]}"
        assert fleet.quantity(variant) == 5
        last = heartbeat.last_tick()
        assert last is not None and last > resumed_at, "beat's heartbeat did not advance after the restart"
        # the schedule was installed again and the lock taken again
        assert fleet.redis.exists(f"{fleet.prefix}:redbeat::lock")
        assert fleet.redis.exists(f"{fleet.prefix}:redbeat:flush-stock")
    finally:
        beat.stop()
        fleet.stop()
