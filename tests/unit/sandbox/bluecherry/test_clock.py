"""The settable clock and tenant time zone: last_mod in tenant-local time, across daylight saving."""

from __future__ import annotations

from sandbox.bluecherry.clock import SandboxClock
from tests.unit.sandbox.bluecherry.conftest import BlueCherry


def test_fall_back_repeats_the_local_hour_in_last_mod(bc: BlueCherry) -> None:
    set_clock = bc.control.post("/clock", json={"timezone": "America/New_York", "now": "2026-11-01 01:30:00"})
    assert set_clock.json()["utc"] == "2026-11-01T05:30:00+00:00"
    first = bc.touched({"op": "create_customer"}, resource="customer")[0]
    clock = bc.control.post("/clock", json={"advance": 3600}).json()
    assert (clock["now"], clock["utc_offset"]) == ("2026-11-01 01:30:00", "-1 day, 19:00:00")
    second = bc.touched({"op": "create_customer"}, resource="customer")[0]
    assert first["last_mod"] == second["last_mod"] == "2026-11-01 01:30:00"
    assert second["pkey"] > first["pkey"]  # same second: ordered by pkey


def test_spring_forward_skips_the_local_hour(bc: BlueCherry) -> None:
    bc.control.post("/clock", json={"now": "2026-03-08 01:59:59"})
    bc.control.post("/clock", json={"advance": 1})
    assert bc.control.get("/clock").json()["now"] == "2026-03-08 03:00:00"


def test_timezone_freeze_and_running_clock(bc: BlueCherry) -> None:
    assert bc.control.get("/clock").json() == {
        "now": "2026-11-20 12:00:00",
        "utc": "2026-11-20T17:00:00+00:00",
        "timezone": "America/New_York",
        "utc_offset": "-1 day, 19:00:00",
        "frozen": True,
    }
    assert bc.control.post("/clock", json={"timezone": "Europe/London"}).json()["now"] == "2026-11-20 17:00:00"
    record = bc.touched({"op": "create_customer"}, resource="customer")[0]
    assert record["last_mod"] == "2026-11-20 17:00:00"
    assert bc.control.post("/clock", json={"timezone": "Mars/Base"}).status_code == 400
    assert bc.control.post("/clock", json={"wibble": 1}).status_code == 400


def test_unfrozen_clock_runs_from_the_set_time() -> None:
    clock = SandboxClock("UTC", "2026-01-01 00:00:00")
    first = clock.timestamp()
    assert clock.now_local().startswith("2026-01-01 00:0")
    clock.freeze()
    frozen = clock.timestamp()
    assert frozen >= first and clock.timestamp() == frozen
    clock.advance(59)
    assert clock.timestamp() == frozen + 59
    clock.unfreeze()
    assert clock.timestamp() >= frozen + 59
