"""Handing work to the broker: the poller and the flows submit operations; the engine publishes follow-ups.

Every new envelope first claims its operation keys in the in-flight registry (`state.inflight`): an operation
already queued, scheduled or being sent by another envelope is not published again (one piece of work in
flight once; a newer version takes the key over). Claims of envelopes that could not be published are
released, so a caller that retries after a broker error is not refused by its own failed attempt.

Envelopes reach the broker `PUBLISH_BATCH` at a time in one Redis pipeline with their task-sent events
(`publish_batch`): a page of changes costs the producer a round trip, not two per envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu.exceptions import BatchPublishError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.celery import app
from config.task_names import deliver_task
from delivery.packing import group_for_delivery
from state.factory import stores
from state.inflight import InFlight
from sync.operations import Operation

log = logging.getLogger(__name__)


def publish(task: str, args: list[Any], queue: str, *, task_id: str | None = None) -> None:
    app.send_task(task, args=args, queue=queue, task_id=task_id)


def submit(operations: list[Operation]) -> int:
    """Enqueue operations for delivery on their lanes; returns the number of messages published.
    Returns only after the broker has every message (the poller advances its watermark after this)."""
    return publish_envelopes(group_for_delivery(operations))


def claim_operations(envelopes: list[dict[str, Any]], inflight: InFlight) -> list[dict[str, Any]]:
    """The envelopes cut down to the operations they may carry (empty ones left out)."""
    claims = inflight.claim_many(
        [(env["id"], [(str(op.get("key")), op.get("version")) for op in env["operations"]]) for env in envelopes]
    )
    kept: list[dict[str, Any]] = []
    for env, accepted in zip(envelopes, claims, strict=True):
        ops = env["operations"]
        mine = [op for op in ops if op.get("key") in accepted]
        if len(mine) < len(ops):
            log.info("%d %s operation(s) already in flight: not submitted again", len(ops) - len(mine), env["kind"])
        if mine:
            kept.append(env if len(mine) == len(ops) else {**env, "operations": mine})
    return kept


PUBLISH_BATCH = 200  # envelopes whose messages (and task-sent events) go to Redis in one pipeline
# a pipeline these broke may or may not have reached Redis: it is sent again, message by message
CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def publish_envelopes(
    envelopes: list[dict[str, Any]], inflight: InFlight | None = None, task: str | None = None,
) -> int:
    """Publish delivery envelopes on their lanes over one producer; returns the number published. `task`
    overrides the per-kind task name (a requeued dead letter keeps the name it was written under)."""
    inflight = inflight or stores().inflight
    claimed = claim_operations(envelopes, inflight)
    published = 0

    def count(n: int) -> None:
        nonlocal published
        published += n

    try:
        with app.producer_or_acquire() as producer:
            for start in range(0, len(claimed), PUBLISH_BATCH):
                publish_batch(producer, claimed[start:start + PUBLISH_BATCH], task, on_published=count)
    except BaseException:
        for env in claimed[published:]:
            inflight.release(env["id"], _keys(env))
        raise
    finally:
        inflight.confirm((env["id"], _keys(env)) for env in claimed[:published])
    return published


def publish_batch(producer: Any, chunk: list[dict[str, Any]], task: str | None = None,
                  celery_app: Celery = app, on_published: Callable[[int], None] | None = None) -> None:
    """The chunk's messages and their task-sent events in one Redis pipeline (kombu's `Producer.batch`: one round
    trip, where each message and each event was one); `on_published(n)` each time n more of the chunk, in order,
    are surely on the broker. A pipeline the connection broke is sent again message by message with Celery's
    retries: a message the broken pipeline did deliver is then queued twice, and the second finds the ledger
    already holding its work (as when a caller retries after a broker error). Any other failure (a time limit, a
    Redis error reply) is raised as it is: nothing is sent again."""
    def send(env: dict[str, Any]) -> None:
        celery_app.send_task(task or deliver_task(env["kind"]), args=[env], queue=env["lane"], producer=producer)

    try:
        with producer.batch(max_size=4 * len(chunk) or 1):  # a message, its expiry, its event: never flushed part-way
            for env in chunk:
                send(env)
    except BatchPublishError as exc:
        cause = exc.__cause__
        if cause is None:
            raise
        if not isinstance(cause, CONNECTION_ERRORS):
            raise cause from None
        log.warning("publishing %d envelope(s) in one pipeline failed (%s); publishing them one by one",
                    len(chunk), cause)
        for env in chunk:
            send(env)
            if on_published is not None:
                on_published(1)
        return
    if on_published is not None:
        on_published(len(chunk))


def _keys(env: dict[str, Any]) -> list[str]:
    return [str(op.get("key")) for op in env["operations"]]
