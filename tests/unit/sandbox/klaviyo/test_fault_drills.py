"""Faults for drills: a 429 storm, Klaviyo unreachable (drop_rate 1.0), a refused consent lookup (403)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig
from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import FakeClock, Running
from tests.unit.sandbox.klaviyo.test_faults_and_observation import set_faults

CONSENT_LOOKUP = {"filter": 'any(email,["ann@example.com"])', "additional-fields[profile]": "subscriptions"}


def without_volatile(error: dict) -> dict:
    """An error item without its random id and its detail (which names the seconds)."""
    return {key: value for key, value in error.items() if key not in ("id", "detail")}


def test_throttle_storm_answers_klaviyo_429s_like_the_real_rate_limit(start_sandbox: Callable[..., Running]) -> None:
    running = start_sandbox(KlaviyoSandboxConfig(rate_limit_scale=0.01), FakeClock())
    assert running.client.get("/api/metrics").status_code == 200  # M tier at 1% is 1 per second
    real = running.client.get("/api/metrics")
    assert real.status_code == 429
    set_faults(running, throttle_rate=1.0, throttle_retry_after=12)
    storm = running.client.post("/api/events", json=bodies.event())
    assert storm.status_code == 429 and storm.headers["Retry-After"] == "12"
    assert storm.headers["Content-Type"] == real.headers["Content-Type"]
    (error,) = storm.json()["errors"]
    assert without_volatile(error) == without_volatile(real.json()["errors"][0])
    assert (
        error["code"] == "throttled" and error["detail"] == "Request was throttled. Expected available in 12 seconds."
    )
    assert running.client.get("/_sandbox/state").json()["counts"]["events"] == 0  # not processed
    stats = running.client.get("/_sandbox/stats").json()["endpoints"]["POST /api/events"]
    assert stats["throttled"] == 1 and stats["faults"] == 1 and stats["accepted"] == 0


def test_throttle_storm_respects_endpoints_and_is_a_probability(klaviyo: Running) -> None:
    set_faults(klaviyo, clear=True, throttle_rate=1.0, endpoints=["POST /api/events"])
    assert klaviyo.client.post("/api/events", json=bodies.event()).status_code == 429
    assert klaviyo.client.get("/api/profiles").status_code == 200
    set_faults(klaviyo, clear=True, throttle_rate=0.5, seed=3)
    statuses = [klaviyo.client.get("/api/profiles").status_code for _ in range(40)]
    assert 0 < statuses.count(429) < 40 and statuses.count(429) + statuses.count(200) == 40
    set_faults(klaviyo, throttle_rate=0.0)
    assert {klaviyo.client.get("/api/profiles").status_code for _ in range(10)} == {200}


def test_throttle_storm_settings_round_trip_and_are_checked(klaviyo: Running) -> None:
    settings = FaultSettings(throttle_rate=0.25, throttle_retry_after=5)
    assert FaultSettings.from_json(settings.to_json()) == settings
    shape = set_faults(klaviyo, clear=True, throttle_rate=0.25)
    assert shape["throttle_rate"] == 0.25 and shape["throttle_retry_after"] == 30
    for bad in ({"throttle_rate": 1.5}, {"throttle_retry_after": -1}, {"throttle_retry_after": 2.5},
                {"throttle_retry_after": True}):  # fmt: skip
        assert httpx.post(f"{klaviyo.url}/_sandbox/faults", json=bad).status_code == 400, bad
    with pytest.raises(ValueError, match="throttle_rate"):
        FaultSettings(throttle_rate=-0.1).check()


def test_refused_consent_lookup_answers_a_klaviyo_403(klaviyo: Running) -> None:
    klaviyo.client.post("/api/profile-import", json=bodies.profile_import(email="ann@example.com"))
    set_faults(klaviyo, clear=True, reject_rules=[{"endpoint": "GET /api/profiles", "status": 403}])
    refused = klaviyo.client.get("/api/profiles", params=CONSENT_LOOKUP)
    assert refused.status_code == 403 and refused.headers["Content-Type"] == "application/vnd.api+json"
    (error,) = refused.json()["errors"]
    assert error["status"] == 403 and error["code"] == "permission_denied"
    assert error["title"] == "You do not have permission to perform this action." and error["source"]["pointer"]
    assert klaviyo.client.post("/api/events", json=bodies.event()).status_code == 202  # only the lookup
    set_faults(klaviyo, reject_rules=[{"endpoint": "GET /api/profiles", "status": 403, "code": "no_scope"}])
    assert klaviyo.client.get("/api/profiles", params=CONSENT_LOOKUP).json()["errors"][0]["code"] == "no_scope"
    set_faults(klaviyo, reject_rules=[])
    (profile,) = klaviyo.client.get("/api/profiles", params=CONSENT_LOOKUP).json()["data"]
    assert "subscriptions" in profile["attributes"]


def test_klaviyo_unreachable_every_api_request_loses_its_connection(klaviyo: Running) -> None:
    set_faults(klaviyo, clear=True, drop_rate=1.0)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/api/profiles", {"params": CONSENT_LOOKUP}),
        ("POST", "/api/events", {"json": bodies.event()}),
        ("POST", "/api/profile-import", {"json": bodies.profile_import(email="ann@example.com")}),
        ("GET", "/api/metrics", {}),
        ("POST", "/api/catalog-items", {"json": bodies.catalog_item()}),
    ]
    for method, path, options in requests:
        with pytest.raises(httpx.RemoteProtocolError):  # closed without a response, not an HTTP error
            klaviyo.client.request(method, path, **options)
    state = klaviyo.client.get("/_sandbox/state").json()  # the control routes still answer
    assert state["counts"]["profiles"] == state["counts"]["events"] == state["counts"]["catalog_items"] == 0
    faults = {key: e["faults"] for key, e in klaviyo.client.get("/_sandbox/stats").json()["endpoints"].items()}
    assert sum(faults.values()) == len(requests)
