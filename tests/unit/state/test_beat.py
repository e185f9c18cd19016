"""Beat's heartbeat store, on a real private Redis."""

from __future__ import annotations

from state.beat import BeatHeartbeat


def test_heartbeat_reads_back_the_last_tick_and_its_age(redis_client):
    heartbeat = BeatHeartbeat(redis_client, "t")
    assert heartbeat.last_tick() is None and heartbeat.age(100.0) is None
    heartbeat.tick(1_700_000_000.25)
    heartbeat.tick(1_700_000_001.5)
    assert heartbeat.last_tick() == 1_700_000_001.5
    assert heartbeat.age(1_700_000_004.0) == 2.5
    assert heartbeat.age(1_700_000_000.0) == 0.0  # a clock behind the beat's never shows a negative age
    assert redis_client.get("t:beat:last-tick") == "1700000001.5"
