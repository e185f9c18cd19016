"""The watchdog on a real Redis: what stopped moving raises an exception with its owner."""

from __future__ import annotations

import redis

from config.mapping import Mapping
from config.settings import Settings
from delivery.watchdog import watch, watch_if_due
from state.beat import BeatHeartbeat
from state.claims import ClaimStore
from state.factory import Stores


def _stores(client: redis.Redis, url: str) -> Stores:
    return Stores(Settings(redis_url=url, key_prefix="t", stale_after_seconds=60), Mapping(), client)


def test_a_silent_beat_and_an_old_buffer_raise_exceptions_for_their_owner(redis_client, redis_url) -> None:
    st = _stores(redis_client, redis_url)
    now = 10_000.0
    assert watch(st, now) == [], "no beat ever ticked (no beat deployed yet) and nothing buffered: quiet"
    BeatHeartbeat(redis_client, "t").tick(now - 30)
    ClaimStore(redis_client, "t").push(st.keys.order_bulk_buffer, ['{"kind": "event"}'])
    redis_client.set(st.keys.buffer_since(st.keys.order_bulk_buffer), now - 30)
    assert watch(st, now) == [], "within the limit"
    assert watch(st, now + 100) == ["beat", "order_bulk"]
    records = {(r.type, r.record_key): r for r in st.exceptions.list(limit=10)}
    assert records[("beat_stale", "beat")].owner == "operations"
    assert records[("buffer_stale", "order_bulk")].severity == "critical"


def test_one_worker_runs_the_checks_per_interval(redis_client, redis_url) -> None:
    st = _stores(redis_client, redis_url)
    BeatHeartbeat(redis_client, "t").tick(1.0)
    assert watch_if_due(st, now=1000.0) == ["beat"]
    assert watch_if_due(st, now=1000.0) == [], "another worker's drainer within the interval does nothing"
