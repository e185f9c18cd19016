"""The in-flight registry on a real Redis: one envelope holds an operation key at a time."""

from __future__ import annotations

import redis

from state.inflight import PUBLISH_GRACE, InFlight


def test_a_key_held_by_a_live_envelope_is_refused_to_another_until_released(redis_client: redis.Redis) -> None:
    reg = InFlight(redis_client, "t", stale_after=600)
    assert reg.claim("A", [("event:Placed Order:SO1", None), ("profile:C1", "2")]) == {
        "event:Placed Order:SO1", "profile:C1"}
    reg.confirm([("A", ["event:Placed Order:SO1", "profile:C1"])])
    assert reg.claim("B", [("event:Placed Order:SO1", None), ("event:Placed Order:SO2", None)]) == {
        "event:Placed Order:SO2"}
    assert reg.claim("A", [("profile:C1", "2")]) == {"profile:C1"}, "its own claim again (a republish)"
    assert reg.release("B", ["event:Placed Order:SO1"]) == 0, "only the holder releases"
    assert reg.release("A", ["event:Placed Order:SO1"]) == 1
    assert reg.claim("B", [("event:Placed Order:SO1", None)]) == {"event:Placed Order:SO1"}


def test_a_newer_version_takes_the_key_over_and_an_older_or_equal_one_does_not(redis_client: redis.Redis) -> None:
    reg = InFlight(redis_client, "t", stale_after=600)
    reg.claim("A", [("profile:C1", "2026-01-02")])
    reg.confirm([("A", ["profile:C1"])])
    assert reg.claim("B", [("profile:C1", "2026-01-01")]) == set()
    assert reg.claim("B", [("profile:C1", "2026-01-02")]) == set()
    assert reg.claim("C", [("profile:C1", "2026-01-03")]) == {"profile:C1"}
    assert reg.holders(["profile:C1"])["profile:C1"].envelope == "C"


def test_an_unconfirmed_claim_goes_stale_after_the_publish_grace_a_confirmed_one_after_stale_after(
    redis_client: redis.Redis,
) -> None:
    reg = InFlight(redis_client, "t", stale_after=600)
    reg.claim("A", [("k1", None)], now=1000.0)  # its process died before publishing
    assert reg.claim("B", [("k1", None)], now=1000.0 + PUBLISH_GRACE - 1) == set()
    assert reg.claim("B", [("k1", None)], now=1000.0 + PUBLISH_GRACE + 1) == {"k1"}
    reg.confirm([("B", ["k1"])], now=2000.0)
    assert reg.claim("C", [("k1", None)], now=2000.0 + 599) == set()
    assert reg.claim("C", [("k1", None)], now=2000.0 + 601) == {"k1"}


def test_touch_keeps_a_rescheduled_envelope_holding_its_keys_until_due(redis_client: redis.Redis) -> None:
    reg = InFlight(redis_client, "t", stale_after=600)
    reg.claim("A", [("k1", None)], now=1000.0)
    reg.touch("A", ["k1"], at=5000.0)  # waits for a parked endpoint until then
    assert reg.claim("B", [("k1", None)], now=5000.0 + 500) == set()
    reg.touch("B", ["k1"], at=9000.0)  # not the holder: no effect
    assert reg.holders(["k1"])["k1"].at == 5000.0
