"""Issue 18: a request's ledger writes take one round trip, however many rows it delivered, and newest still wins."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from state.inflight import InFlight
from state.lane_stats import LaneStats
from state.ledger import Ledger
from state.outage import KlaviyoOutage
from sync.ledger import LedgerEntry


def count_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per write to a Redis socket (a pipeline is one)."""
    sends: list[int] = []
    original = redis.connection.Connection.send_packed_command

    def send(self: redis.connection.Connection, command: Any, check_health: bool = True) -> None:
        sends.append(1)
        original(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", send)
    return sends


def entry(i: int, version: str | None = None) -> LedgerEntry:
    return LedgerEntry(key=f"event:Placed Order:SO{i}", delivered_at=float(i), status=202,
                       endpoint="event-bulk-create-jobs", record=f"order:SO{i}", version=version)


def test_a_thousand_rows_are_recorded_in_one_round_trip(redis_client: redis.Redis,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = Ledger(redis_client, "rt1", ttl_days=2)
    redis_client.ping()  # the connection exists before counting
    sends = count_sends(monkeypatch)
    ledger.record([entry(i, version=f"v{i:04d}" if i % 2 else None) for i in range(1000)])
    assert len(sends) == 1
    monkeypatch.undo()
    found = ledger.delivered([f"event:Placed Order:SO{i}" for i in range(1000)])
    assert len(found) == 1000 and found["event:Placed Order:SO7"].version == "v0007"
    assert [e.key for e in ledger.for_record("order:SO999")] == ["event:Placed Order:SO999"]
    assert 0 < redis_client.ttl("rt1:ledger-index:order:SO3") <= 2 * 86400


def test_inside_a_pipeline_the_ledger_adds_no_round_trip_and_an_older_version_never_wins(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(redis_client, "rt2", ttl_days=2)
    ledger.record([entry(1, version="2026-05-02"), entry(2, version="2026-05-02")])
    redis_client.ping()
    sends = count_sends(monkeypatch)
    pipe = redis_client.pipeline(transaction=False)
    ledger.record([entry(1, version="2026-05-01"), entry(2, version="2026-05-03"), entry(3)], client=pipe)
    pipe.incr("rt2:other")
    written, _ = pipe.execute()
    assert len(sends) == 1 and written == 2
    monkeypatch.undo()
    held = ledger.delivered(["event:Placed Order:SO1", "event:Placed Order:SO2", "event:Placed Order:SO3"])
    assert {k: e.version for k, e in held.items()} == {
        "event:Placed Order:SO1": "2026-05-02",  # the older write came late: kept the newer
        "event:Placed Order:SO2": "2026-05-03",
        "event:Placed Order:SO3": None,
    }


def test_keys_and_records_with_quotes_newlines_and_non_ascii_are_recorded_as_given(redis_client: redis.Redis) -> None:
    ledger = Ledger(redis_client, "rt3", ttl_days=2)
    odd = ['event:Placed "Order":SO1', "event:Café:SO2", "event:line\nbreak:SO3", "event:back\\slash:SO4"]
    ledger.record([LedgerEntry(key=key, delivered_at=1.0, status=202, endpoint="events", record=f"order:{key[-3:]}é",
                               version="v1") for key in odd])
    found = ledger.delivered(odd)
    assert sorted(found) == sorted(odd) and all(found[key].key == key for key in odd)
    assert [e.key for e in ledger.for_record("order:SO3é")] == ["event:line\nbreak:SO3"]


def test_after_a_delivery_ledger_release_resume_and_lane_statistics_are_one_round_trip(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What delivery.engine._after_delivery queues: no SCRIPT EXISTS before it (scripts go in as EVAL)."""
    ledger, inflight = Ledger(redis_client, "rt4"), InFlight(redis_client, "rt4")
    outage, stats = KlaviyoOutage(redis_client, "rt4", "rt4:due"), LaneStats(redis_client, "rt4")
    assert inflight.claim("env-1", [("event:Placed Order:SO1", None)]) == {"event:Placed Order:SO1"}
    redis_client.ping()
    sends = count_sends(monkeypatch)
    pipe = redis_client.pipeline(transaction=False)
    ledger.record([entry(1)], client=pipe)
    inflight.release("env-1", ["event:Placed Order:SO1"], client=pipe)
    outage.resume(client=pipe)
    stats.delivered("fast", 1, 1.0, client=pipe)
    stats.outcome("fast", "event", "delivered", 1, client=pipe)
    pipe.execute()
    assert len(sends) == 1
    monkeypatch.undo()
    assert inflight.holders(["event:Placed Order:SO1"]) == {}
    assert ledger.get("event:Placed Order:SO1") is not None and stats.summary(("fast",))["fast"]["delivered"] == 1
