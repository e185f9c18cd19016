"""Rate limits: fixed aligned windows per endpoint, tiers, scaling, Retry-After, headers, exact stats."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig
from sandbox.klaviyo.ratelimit import RateLimiter, scaled
from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import HEADERS, FakeClock, Running


def test_scaling_rounds_up_and_keeps_at_least_one() -> None:
    assert [scaled(n, 0.1) for n in (350, 3500, 75, 750, 10, 150, 3, 60)] == [35, 350, 8, 75, 1, 15, 1, 6]
    assert scaled(3, 0.01) == 1
    assert scaled(75, 2) == 150


@pytest.mark.parametrize(
    ("key", "tier", "limits"),
    [
        ("POST /api/events", "XL", (350, 3500)),
        ("GET /api/events", "XL", (350, 3500)),
        ("POST /api/back-in-stock-subscriptions", "XL", (350, 3500)),
        ("POST /api/profile-import", "L", (75, 750)),
        ("GET /api/profiles", "L", (75, 750)),
        ("POST /api/profile-subscription-bulk-create-jobs", "L", (75, 750)),
        ("POST /api/profile-subscription-bulk-delete-jobs", "L", (75, 750)),
        ("PATCH /api/catalog-variants/{id}", "L", (75, 750)),
        ("POST /api/catalog-variant-bulk-update-jobs", "L", (75, 750)),
        ("GET /api/catalog-variant-bulk-update-jobs/{job_id}", "L", (75, 750)),
        ("POST /api/event-bulk-create-jobs", "M", (10, 150)),
        ("POST /api/profile-bulk-import-jobs", "M", (10, 150)),
        ("GET /api/profile-bulk-import-jobs/{id}", "M", (10, 150)),
        ("POST /api/data-privacy-deletion-jobs", "DATA_PRIVACY", (3, 60)),
    ],
)
def test_tiers_from_the_reference_table(klaviyo: Running, key: str, tier: str, limits: tuple[int, int]) -> None:
    stats = klaviyo.client.get("/_sandbox/stats").json()["endpoints"][key]
    assert (stats["tier"], stats["burst_limit"], stats["steady_limit"]) == (tier, *limits)


def post_events(running: Running, count: int) -> list[int]:
    return [running.client.post("/api/events", json=bodies.event(unique_id=None)).status_code for _ in range(count)]


def test_burst_window_throttles_with_retry_after(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.01), clock)  # XL -> 4/s, 35/min
    assert post_events(running, 4) == [202] * 4
    throttled = running.client.post("/api/events", json=bodies.event())
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    error = throttled.json()["errors"][0]
    assert error["code"] == "throttled" and error["source"]["pointer"]
    assert "RateLimit-Limit" not in throttled.headers
    clock.advance(1.0)  # next aligned second: the burst window resets
    assert post_events(running, 1) == [202]


def test_steady_window_and_headers(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.01), clock)  # 4/s, 35/min
    sent = 0
    for _second in range(9):
        statuses = post_events(running, 4)
        sent += statuses.count(202)
        clock.advance(1.0)
    assert sent == 35
    response = running.client.post("/api/events", json=bodies.event())
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) == 60 - 9  # whole seconds to the minute boundary
    clock.advance(60 - 9)
    ok = running.client.post("/api/events", json=bodies.event(unique_id="new"))
    assert ok.status_code == 202
    assert ok.headers["RateLimit-Limit"] == "35"
    assert ok.headers["RateLimit-Remaining"] == "34"
    assert ok.headers["RateLimit-Reset"] == "60"
    stats = running.client.get("/_sandbox/stats").json()["endpoints"]["POST /api/events"]
    assert stats["max_burst_window"] == 4 and stats["max_steady_window"] == 35
    assert stats["accepted"] == 36 and stats["throttled"] == 2 and stats["received"] == 38


def test_limits_are_per_endpoint(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.01), clock)
    post_events(running, 5)
    response = running.client.post("/api/profile-import", json=bodies.profile_import(email="a@example.com"))
    assert response.status_code == 201


def test_shared_by_every_caller(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.01), clock)
    other_key = HEADERS | {"Authorization": "Klaviyo-API-Key pk_other_integration"}
    with httpx.Client(base_url=running.url, headers=other_key) as other:
        assert [other.post("/api/events", json=bodies.event()).status_code for _ in range(2)] == [202, 202]
    assert post_events(running, 3) == [202, 202, 429]


def test_other_integration_uses_part_of_each_window(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()
    faults = FaultSettings(other_integration_share=0.5)
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.02, faults=faults), clock)  # 7/s -> 4 left
    assert post_events(running, 5) == [202] * 4 + [429]


def test_rate_limits_can_be_turned_off(start_sandbox: Callable[..., Running]) -> None:
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.01, rate_limits_enabled=False), FakeClock())
    assert post_events(running, 10) == [202] * 10
    stats = running.client.get("/_sandbox/stats").json()["endpoints"]["POST /api/events"]
    assert stats["max_burst_window"] == 10


def test_long_throttle_on_one_endpoint(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()
    faults = FaultSettings(long_throttle_endpoint="POST /api/events", long_throttle_seconds=67608)
    running = start_sandbox(KlaviyoSandboxConfig(faults=faults), clock)
    response = running.client.post("/api/events", json=bodies.event())
    assert response.status_code == 429 and response.headers["Retry-After"] == "67608"
    clock.advance(100)
    assert running.client.post("/api/events", json=bodies.event()).headers["Retry-After"] == "67508"
    assert running.client.post("/api/profile-import", json=bodies.profile_import(email="a@x.com")).status_code == 201
    clock.advance(67508)
    assert running.client.post("/api/events", json=bodies.event()).status_code == 202


def test_limiter_unit_retry_after_is_until_the_blocking_window() -> None:
    limiter = RateLimiter(scale=1.0)
    budget = limiter.budget("X", "DATA_PRIVACY")  # 3/s, 60/min
    now = 1_800_000_000.4
    assert [limiter.acquire(budget, now).allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.acquire(budget, now).retry_after == 1


def test_background_consumer_takes_its_part_of_each_window(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()  # 0.25 s into a minute
    faults = FaultSettings(background_share=0.3)
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.1, faults=faults), clock)  # 35/s, 350/min
    clock.advance(30.0)  # half the minute gone: the other integration has used 30% of 350 pro rata
    first = running.client.post("/api/events", json=bodies.event(unique_id="a"))
    assert first.status_code == 202
    assert first.headers["RateLimit-Limit"] == "350"
    assert first.headers["RateLimit-Remaining"] == str(350 - 52 - 1)  # floor(105 * 30.25 / 60) = 52 theirs
    stats = running.client.get("/_sandbox/stats").json()["endpoints"]["POST /api/events"]
    assert stats["background"] == 52 and stats["accepted"] == 1
    # it stops: what it used stays counted in the window, nothing more is added
    assert running.client.post("/_sandbox/faults", json={"background_share": 0.0}).status_code == 200
    clock.advance(10.0)
    second = running.client.post("/api/events", json=bodies.event(unique_id="b"))
    assert second.headers["RateLimit-Remaining"] == str(350 - 52 - 2)
    # a busy account: its part comes first when the fleet left room, and the fleet meets 429s sooner
    running.client.post("/_sandbox/faults", json={"background_share": 0.9})
    clock.advance(15.0)  # 55.25 s into the minute: it wants floor(315 * 55.25 / 60) = 290
    third = running.client.post("/api/events", json=bodies.event(unique_id="c"))
    assert third.headers["RateLimit-Remaining"] == str(350 - 290 - 3)


def test_window_phase_is_not_the_fleet_clock(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()  # 0.25 s into an epoch minute; Klaviyo's minute started 30.25 s ago
    faults = FaultSettings(window_phase_seconds=30.0)
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.01, faults=faults), clock)  # 4/s, 35/min
    ok = running.client.post("/api/events", json=bodies.event(unique_id=None))
    assert ok.headers["RateLimit-Reset"] == "30"  # 60 on the fleet's clock
    sent = 1
    for _second in range(9):
        clock.advance(1.0)
        sent += post_events(running, 4).count(202)
    assert sent == 35
    refused = running.client.post("/api/events", json=bodies.event())
    assert refused.status_code == 429 and refused.headers["Retry-After"] == str(30 - 9)
    clock.advance(30 - 9)  # Klaviyo's minute turns at 30.25 s past the epoch minute, not at its end
    assert post_events(running, 1) == [202]


def test_background_and_phase_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="background_share"):
        FaultSettings(background_share=1.0).check()
    with pytest.raises(ValueError, match="window_phase_seconds"):
        FaultSettings(window_phase_seconds=60.0).check()
    assert FaultSettings().merged({"window_phase_seconds": 12.5}).window_phase_seconds == 12.5
