"""Envelopes are published in pipelines (`delivery.publish.publish_batch`, kombu's `Producer.batch`): the task
messages of a batch and their task-sent events (task events on, as by default) reach Redis in one round trip
instead of two per envelope - and every message and every event still arrives, in order.

A real Redis (a private server per test, so every request it reads in the window is this test's) and the
fleet's Celery app with its own broker transport."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from config.celery import make_app
from config.settings import Settings
from config.task_names import deliver_task
from delivery.packing import group_for_delivery
from delivery.publish import publish_batch
from sync.operations import Operation
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration

ENVELOPES = 50


def event_op(n: int, run: str) -> Operation:
    return Operation(kind="event", key=f"event:Ordered Product:{run}-{n}", lane="default", record=f"order:SO{n}",
                     payload={"metric": "Ordered Product", "profile": {"email": f"shopper{n}@example.com"},
                              "properties": {"OrderId": f"SO{n}"}, "time": "2026-01-05T10:00:00Z",
                              "unique_id": f"{run}-{n}"})


def reads(client: redis.Redis) -> tuple[int, int]:
    """Reads redis-server has made off client sockets - one per request (a command, a pipeline, a MULTI block),
    more for a request longer than one read (16 KB) - and the bytes it read."""
    stats = client.info("stats")
    return int(stats["total_reads_processed"]), int(stats["total_net_input_bytes"])


@pytest.fixture
def app_and_client() -> Iterator[tuple[object, redis.Redis, str]]:
    """A redis-server of the test's own: every request it reads in the window is this test's (the session's
    server may still hear an earlier test's clients)."""
    server = PrivateRedis.start()
    prefix = f"t{uuid.uuid4().hex[:8]}"
    app = make_app(Settings(redis_url=server.url, key_prefix=prefix, task_events=True))
    client = redis.Redis.from_url(server.url)
    try:
        yield app, client, prefix
    finally:
        client.close()
        app.close()
        server.stop()


def _queued(client: redis.Redis, prefix: str) -> list[str]:
    """The ids of the default lane's queued task messages, oldest first."""
    raw = client.lrange(f"{prefix}:broker:default", 0, -1)[::-1]  # LPUSH puts the newest first
    return [json.loads(m)["headers"]["id"] for m in raw]


def test_a_batch_of_envelopes_and_their_task_sent_events_is_one_round_trip(app_and_client) -> None:  # type: ignore[no-untyped-def]
    app, client, prefix = app_and_client
    run = uuid.uuid4().hex[:6]
    envelopes = [e for n in range(ENVELOPES) for e in group_for_delivery([event_op(n, run)])]
    pubsub = client.pubsub()
    pubsub.psubscribe(f"{prefix}:broker:*celeryev*")
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    with app.producer_or_acquire() as producer:  # type: ignore[attr-defined]
        publish_batch(producer, envelopes[:1], celery_app=app)  # the producer's first use declares the exchanges
        (reads_before, bytes_before) = reads(client)
        publish_batch(producer, envelopes[1:], celery_app=app)
        (reads_after, bytes_after) = reads(client)
    used = reads_after - reads_before - 1  # less the INFO that read `before`
    # one request of this length is read 16 KB at a time (7 reads here); a loaded machine may hand Redis a part
    # of it per read, which can double that - still far below the 2 round trips per envelope without the batch
    one_request = 1 + (bytes_after - bytes_before) // 16_384
    assert used < ENVELOPES // 2, f"{used} reads for {ENVELOPES - 1} envelopes and their task-sent events " \
        f"({bytes_after - bytes_before:,} bytes: {one_request} reads if they were one request)"
    ids = _queued(client, prefix)
    assert len(ids) == ENVELOPES
    sent: list[str] = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        if message["type"] == "pmessage":
            body = json.loads(message["data"])
            sent.append(json.loads(base64.b64decode(body["body"]))["uuid"])
    pubsub.close()
    assert sent == ids  # every message has its task-sent event, in the order published


def test_without_a_batch_each_envelope_and_its_event_is_a_round_trip_of_its_own(app_and_client) -> None:  # type: ignore[no-untyped-def]
    """What the batch saves: the same publishing, one send_task at a time (the code before the batching)."""
    app, client, _ = app_and_client
    run = uuid.uuid4().hex[:6]
    envelopes = [e for n in range(ENVELOPES) for e in group_for_delivery([event_op(n, run)])]
    with app.producer_or_acquire() as producer:  # type: ignore[attr-defined]
        app.send_task(deliver_task("event"), args=[envelopes[0]], queue="default", producer=producer)  # type: ignore[attr-defined]
        before = reads(client)[0]
        for env in envelopes[1:]:
            app.send_task(deliver_task(env["kind"]), args=[env], queue="default", producer=producer)  # type: ignore[attr-defined]
        used = reads(client)[0] - before - 1
    assert used >= 2 * (ENVELOPES - 1)
