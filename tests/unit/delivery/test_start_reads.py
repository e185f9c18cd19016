"""Issue 18: a delivery task's start record and the engine's first reads (who holds the keys, what the ledger has)
share one round trip - and what was read for one envelope is never taken for another. Real Redis; the Klaviyo
client points at a closed port, so a request attempt shows as a retry in the delayed schedule."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from delivery.engine import forget_prefetched, process_envelope, queue_held_reads
from delivery.envelope import envelope
from delivery.runtime import Runtime
from sync.ledger import LedgerEntry
from sync.operations import Operation
from tests.unit.delivery.test_process_envelope import make_runtime
from tests.unit.state.test_ledger_round_trips import count_sends


def event(n: int) -> Operation:
    return Operation(kind="event", key=f"event:Placed Order:SO{n}", lane="default", payload={
        "metric": "Placed Order", "profile": {"email": "ann@example.com"}, "properties": {"OrderId": f"SO{n}"},
        "time": "2026-03-02T10:00:00+00:00", "value": 10.0, "unique_id": f"SO{n}"})


def start(rt: Runtime, message_id: str, message: dict[str, Any]) -> int:
    """What the delivery task's base does before its body: the start counted, the engine's reads with it."""
    starts, keep, reads = rt.stores.task_runs.started_reading(
        message_id, "bcsync.deliver.event", "default", lambda pipe: queue_held_reads(rt, message, pipe))
    assert keep is not None
    keep(reads)
    return starts


def test_the_start_and_the_engines_first_reads_are_one_round_trip(redis_client: redis.Redis, redis_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rt = make_runtime(redis_client, redis_url)
    rt.ledger.record([LedgerEntry(key=event(n).key, delivered_at=time.time(), status=202, endpoint="events")
                      for n in (1, 2)])
    redis_client.ping()
    sends = count_sends(monkeypatch)
    process_envelope(envelope([event(1)], "default"), rt)  # in the ledger: skipped, after reading for itself
    alone = len(sends)
    message = envelope([event(2)], "default")
    sends.clear()
    assert start(rt, "m2", message) == 1
    assert len(sends) == 1  # the start and both reads
    sends.clear()
    process_envelope(message, rt)
    assert len(sends) == alone - 1
    assert rt.delayed.pending() == 0 and rt.stores.task_runs.get("m2") is not None


def test_reads_made_for_one_envelope_are_never_taken_for_another(redis_client: redis.Redis, redis_url: str) -> None:
    rt = make_runtime(redis_client, redis_url)
    first = envelope([event(3)], "default")
    start(rt, "m3", first)  # read while SO3 was nowhere: "not delivered"
    rt.ledger.record([LedgerEntry(key=event(3).key, delivered_at=time.time(), status=202, endpoint="events")])
    process_envelope(envelope([event(3)], "default"), rt)  # another envelope of the same key: reads again
    assert rt.delayed.pending() == 0  # it found SO3 delivered and sent nothing (a send would be a retry)


def test_reads_the_task_did_not_use_are_forgotten_at_its_end(redis_client: redis.Redis, redis_url: str) -> None:
    rt = make_runtime(redis_client, redis_url)
    message = envelope([event(4)], "default")
    start(rt, "m4", message)
    forget_prefetched()  # the task base's end (a poisoned message, a body that stopped before reading)
    rt.ledger.record([LedgerEntry(key=event(4).key, delivered_at=time.time(), status=202, endpoint="events")])
    process_envelope(message, rt)  # the same envelope redelivered later: what it reads now, not then
    assert rt.delayed.pending() == 0


def test_a_message_the_reads_cannot_be_made_of_still_counts_its_start(redis_client: redis.Redis,
                                                                        redis_url: str) -> None:
    rt = make_runtime(redis_client, redis_url)
    starts, keep, reads = rt.stores.task_runs.started_reading(
        "m5", "bcsync.deliver", "fast", lambda pipe: queue_held_reads(rt, {"id": "x"}, pipe))
    assert (starts, reads, keep) == (1, [], None)
    run = rt.stores.task_runs.get("m5")
    assert run is not None and (run.starts, run.lane, run.task) == (1, "fast", "bcsync.deliver")
