"""The beat scheduler in-process on a real private Redis: it takes the lock, waits as a standby while
another beat holds it, takes the lock back and re-installs the schedule after Redis lost everything, and
backs off instead of raising while Redis is unreachable."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import redis

from config.celery import make_app
from config.settings import Settings
from state.beat import BeatHeartbeat
from workers.beat_scheduler import BACKOFF_CAP, ResilientRedBeatScheduler, backoff

PREFIX = "tbeat"
LOCK = f"{PREFIX}:redbeat::lock"
ENTRY = f"{PREFIX}:redbeat:flush-stock"


def scheduler_for(redis_url: str) -> ResilientRedBeatScheduler:
    app = make_app(Settings(redis_url=redis_url, key_prefix=PREFIX, beat_lock_timeout_seconds=6))
    return ResilientRedBeatScheduler(app=app)


@pytest.fixture
def scheduler(redis_url: str) -> Iterator[ResilientRedBeatScheduler]:
    made = scheduler_for(redis_url)
    yield made
    made.close()


def published(client: redis.Redis) -> int:
    return int(client.llen(f"{PREFIX}:broker:batch"))


def test_holder_ticks_and_records_its_heartbeat(scheduler, redis_client):
    scheduler.tick()
    assert scheduler.lock is not None and redis_client.get(LOCK) == scheduler.lock.local.token.decode()
    assert redis_client.exists(ENTRY)
    assert BeatHeartbeat(redis_client, PREFIX).last_tick() is not None


def test_after_redis_lost_everything_the_lock_and_schedule_come_back(scheduler, redis_client):
    scheduler.tick()
    redis_client.flushdb()  # what a restart of a Redis without persistence leaves
    scheduler.tick()
    assert scheduler.lock is not None and redis_client.get(LOCK) == scheduler.lock.local.token.decode()
    assert redis_client.exists(ENTRY) and redis_client.exists(f"{PREFIX}:redbeat::statics")
    assert BeatHeartbeat(redis_client, PREFIX).last_tick() is not None


def test_standby_sends_nothing_while_another_beat_holds_the_lock(scheduler, redis_client):
    redis_client.set(LOCK, "another-beat", px=6000)
    time.sleep(1.1)  # flush-stock (every second, installed with the scheduler) is due now
    assert scheduler.tick() == scheduler.max_interval
    assert scheduler.lock is None and published(redis_client) == 0
    assert BeatHeartbeat(redis_client, PREFIX).last_tick() is None
    redis_client.delete(LOCK)  # the holder's lock expired
    scheduler.tick()
    assert scheduler.lock is not None and published(redis_client) >= 1


def test_unreachable_redis_backs_off_instead_of_raising():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    scheduler = scheduler_for(f"redis://127.0.0.1:{port}/0")
    assert [scheduler.tick() for _ in range(2)] == [backoff(1), backoff(2)]
    scheduler.close()


def test_backoff_doubles_up_to_its_cap():
    assert [backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff(50) == BACKOFF_CAP
