"""The order bulk buffer's flush killed between claim and publish loses nothing: a real flush process,
SIGKILLed in its publish, on real Redis; the next flush takes the claim back and publishes every event once."""

from __future__ import annotations

import signal
from collections import Counter

import redis

from state.keys import RedisKeys
from sync.operations import Operation
from tests.support.crash_flush import queued_operations, run
from tests.support.fleet import fleet_env


def event(n: int) -> Operation:
    return Operation(kind="event", key=f"event:Placed Order:B{n}", lane="batch",
                     payload={"metric": "Placed Order", "unique_id": f"B{n}", "email": f"c{n}@example.com"})


def test_a_bulk_flush_killed_between_claim_and_publish_loses_no_event(redis_url):
    # no age bound: the flush after the crash ships the 500 behind the reclaimed chunk too
    env = fleet_env(redis_url, "http://127.0.0.1:9", BCSYNC_BULK_MAX_WAIT_SECONDS="0")
    keys = RedisKeys(env["BCSYNC_KEY_PREFIX"])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    events = [event(n) for n in range(1500)]
    client.rpush(keys.order_bulk_buffer, *[op.model_dump_json() for op in events])

    crashed = run("orders", "crash", env)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    # the first 1000 were taken out of the buffer and nothing reached the broker
    assert client.llen(keys.order_bulk_buffer) == 500 and client.llen(keys.queue("batch")) == 0

    flushed = run("orders", "normal", env, reclaim_after=0)  # a later flush, once the claim is stale
    assert flushed.returncode == 0, flushed.stderr
    assert queued_operations(client, keys.queue("batch")) == Counter(op.key for op in events)
    assert client.llen(keys.order_bulk_buffer) == 0 and client.zcard(keys.claims) == 0
    client.close()
