"""Task events in batches (config/task_events.py): a worker publishes its buffered task events at most every
BCSYNC_TASK_EVENTS_FLUSH_SECONDS as one `task.multi` message - and a Celery event receiver (Flower's
mechanism) still sees every task's received, started and succeeded events, while Redis counts far fewer
PUBLISH calls than tasks. At 0 (Celery's own flush on the loop's next turn, the code before the batching) a
worker publishes about once per task event.

A private redis-server (its `INFO commandstats` counts this fleet alone), a real `bcsync worker` on the default
lane at concurrency 2, single events delivered to the Klaviyo sandbox over HTTP (limits off)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from config.celery import make_app
from config.settings import Settings
from config.task_events import MAX_BUFFERED
from config.task_names import deliver_task
from delivery.packing import group_for_delivery
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from sync.operations import Operation
from tests.support.fleet import WorkerProcess, fleet_env, wait_for
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration

TASKS = 200
# Klaviyo's tiers x 100 on both sides (the sandbox's RateLimit headers agree with the fleet's limiter): no
# budget binds, so each event is one task that delivers at once (a budget wait would reschedule it)
SCALE = 100
TASK_EVENTS = ("task-received", "task-started", "task-succeeded")  # what a worker publishes per task


def event_op(n: int, run: str) -> Operation:
    return Operation(kind="event", key=f"event:Ordered Product:{run}-{n}", lane="default", record=f"order:SO{n}",
                     payload={"metric": "Ordered Product", "profile": {"email": f"shopper{n}@example.com"},
                              "properties": {"OrderId": f"SO{n}"}, "time": "2026-01-05T10:00:00Z",
                              "value": 49.5, "value_currency": "USD", "unique_id": f"{run}-{n}"})


class EventLog:
    """Celery's task events as a receiver on the fleet's broker sees them (in a thread, as Flower does)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.seen: dict[str, set[str]] = {kind: set() for kind in TASK_EVENTS}
        self.heartbeats = 0
        self.lock = threading.Lock()
        self.receiver: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_event(self, event: dict[str, Any]) -> None:
        with self.lock:
            if event["type"] in self.seen:
                self.seen[event["type"]].add(event["uuid"])
            elif event["type"] == "worker-heartbeat":
                self.heartbeats += 1

    def _run(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self._on_event})
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def start(self) -> EventLog:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.should_stop = True  # its consume loop looks every second
        self.thread.join(timeout=10)

    def missing(self, kind: str, ids: set[str]) -> set[str]:
        with self.lock:
            return ids - self.seen[kind]


def publishes(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))


@pytest.fixture
def sandbox() -> Iterator[ServerThread]:
    server = ServerThread(create_app(KlaviyoSandboxConfig(rate_limits_enabled=False, rate_limit_scale=SCALE)))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A server of this test's own: every PUBLISH it counts is this fleet's."""
    server = PrivateRedis.start()
    yield server
    server.stop()


@pytest.mark.parametrize("flush_seconds", ["0", "0.2"])
def test_batched_task_events_lose_none_and_publish_far_less(flush_seconds: str, private_redis: PrivateRedis,
                                                            sandbox: ServerThread) -> None:
    env = fleet_env(private_redis.url, sandbox.url, BCSYNC_TASK_EVENTS="true",
                    BCSYNC_TASK_EVENTS_FLUSH_SECONDS=flush_seconds,
                    BCSYNC_RATE_LIMIT_SCALE=str(SCALE))
    # the producer sends no task-sent events of its own: every PUBLISH counted below is the worker's
    settings = Settings(**{k[len("BCSYNC_"):].lower(): v for k, v in env.items()  # type: ignore[arg-type]
                           if k.startswith("BCSYNC_")} | {"task_events": False})
    app = make_app(settings)
    client = redis.Redis.from_url(private_redis.url)
    worker = WorkerProcess("default", env, concurrency=2)
    events = EventLog(app)
    run = uuid.uuid4().hex[:6]

    def send(ops: list[Operation]) -> set[str]:
        with app.producer_or_acquire() as producer:
            return {app.send_task(deliver_task(e["kind"]), args=[e], queue="default", producer=producer).id
                    for op in ops for e in group_for_delivery([op])}

    def all_seen(ids: set[str]) -> bool:
        return not any(events.missing(kind, ids) for kind in TASK_EVENTS)

    try:
        worker.start()
        events.start()
        # the receiver is subscribed once it hears the worker's heartbeat (every 2 s); one task warms up
        wait_for(lambda: events.heartbeats > 0, 30, message="the receiver to hear the worker")
        warm = send([event_op(-1, run)])
        wait_for(lambda: all_seen(warm), 30, message="the warm-up task's events")

        before, start = publishes(client), time.monotonic()
        ids = send([event_op(n, run) for n in range(TASKS)])
        assert len(ids) == TASKS
        wait_for(lambda: all_seen(ids), 60, interval=0.1, message=f"the events of {TASKS} tasks")
        published, elapsed = publishes(client) - before, time.monotonic() - start

        # nothing lost by the batching: every task's events reached the receiver, every event reached Klaviyo
        assert not any(events.missing(kind, ids) for kind in TASK_EVENTS)
        stats = httpx.get(f"{sandbox.url}/_sandbox/stats", timeout=30).json()
        assert stats["endpoints"]["POST /api/events"]["received"] == TASKS + 1
        seen = f"{published} PUBLISH for {TASKS} tasks ({published / TASKS:.2f} per task) in {elapsed:.1f} s"
        print(f"flush {flush_seconds} s: {seen}")
        interval = float(flush_seconds)
        if interval > 0:
            # a publish per batch - one per interval at most, one per MAX_BUFFERED events - and the worker's
            # heartbeats (every 2 s): far fewer than one per task, even on a machine 20x slower than this one
            # (200 tasks took well under a second here: 3 PUBLISH)
            assert published < TASKS / 2, f"the task events were not batched: {seen}"
            batches = elapsed / interval + TASKS * len(TASK_EVENTS) / MAX_BUFFERED + elapsed / 2
            assert published <= batches + 5, f"more publishes than batches and heartbeats: {seen}"
        else:
            # Celery's own flush on the loop's next turn: about a publish per task event (2.8 per task here);
            # the batched run's bound above fails on it
            assert published >= TASKS / 2, f"too few publishes at flush 0: {seen}"
    finally:
        events.stop()
        worker.stop()
        client.close()
