"""Faults on demand, /_sandbox controls and --record."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig
from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import FakeClock, Running


def set_faults(running: Running, **changes: object) -> dict:
    response = httpx.post(f"{running.url}/_sandbox/faults", json=changes)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_error_rate_per_status(klaviyo: Running, status: int) -> None:
    set_faults(klaviyo, clear=True, error_rates={str(status): 1.0})
    response = klaviyo.client.post("/api/events", json=bodies.event())
    assert response.status_code == status
    assert response.json()["errors"][0]["source"]["pointer"]
    stats = klaviyo.client.get("/_sandbox/stats").json()["endpoints"]["POST /api/events"]
    assert stats["faults"] == 1
    assert klaviyo.client.get("/_sandbox/state").json()["counts"]["events"] == 0  # not processed


def test_error_rate_is_a_probability(klaviyo: Running) -> None:
    set_faults(klaviyo, clear=True, error_rates={"500": 0.5}, seed=7)
    statuses = [klaviyo.client.get("/api/profiles").status_code for _ in range(40)]
    assert 0 < statuses.count(500) < 40 and statuses.count(200) > 0


def test_faults_can_target_endpoints(klaviyo: Running) -> None:
    set_faults(klaviyo, clear=True, error_rates={"503": 1.0}, endpoints=["POST /api/events"])
    assert klaviyo.client.post("/api/events", json=bodies.event()).status_code == 503
    assert klaviyo.client.get("/api/profiles").status_code == 200


def test_reject_rules_refuse_an_endpoint_until_lifted(klaviyo: Running) -> None:
    rule = {"endpoint": "POST /api/events", "status": 400, "code": "invalid", "detail": "Nope.",
            "pointer": "/data/attributes/properties"}
    set_faults(klaviyo, clear=True, reject_rules=[rule])
    refused = klaviyo.client.post("/api/events", json=bodies.event())
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["code"] == "invalid" and error["source"]["pointer"] == "/data/attributes/properties"
    assert klaviyo.client.get("/api/profiles").status_code == 200  # other endpoints unaffected
    assert klaviyo.client.get("/_sandbox/state").json()["counts"]["events"] == 0
    set_faults(klaviyo, reject_rules=[])
    assert klaviyo.client.post("/api/events", json=bodies.event()).status_code == 202
    bad = httpx.post(f"{klaviyo.url}/_sandbox/faults", json={"reject_rules": [{"endpoint": "x", "status": 429}]})
    assert bad.status_code == 400


def test_outage_for_n_seconds(start_sandbox: Callable[..., Running]) -> None:
    clock = FakeClock()
    running = start_sandbox(KlaviyoSandboxConfig(), clock)
    shape = set_faults(running, outage_seconds=30)
    assert shape["outage_remaining_seconds"] == 30
    assert running.client.get("/api/profiles").status_code == 503
    clock.advance(29)
    assert running.client.post("/api/events", json=bodies.event()).status_code == 503
    clock.advance(1)
    assert running.client.get("/api/profiles").status_code == 200


def test_added_latency(klaviyo: Running) -> None:
    set_faults(klaviyo, clear=True, latency_ms=300)
    started = time.monotonic()
    assert klaviyo.client.get("/api/profiles").status_code == 200
    assert time.monotonic() - started >= 0.3  # a lower bound the sandbox guarantees, not a speed claim


def test_dropped_connection(klaviyo: Running) -> None:
    set_faults(klaviyo, clear=True, drop_rate=1.0)
    with pytest.raises(httpx.TransportError):
        klaviyo.client.post("/api/events", json=bodies.event())
    set_faults(klaviyo, clear=True)
    assert klaviyo.client.get("/api/profiles").status_code == 200  # the server is fine afterwards
    stats = klaviyo.client.get("/_sandbox/stats").json()["endpoints"]["POST /api/events"]
    assert stats["faults"] == 1 and stats["accepted"] == 0


def test_response_slower_than_the_client_timeout_is_still_processed(klaviyo: Running) -> None:
    set_faults(klaviyo, clear=True, slow_rate=1.0, slow_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        klaviyo.client.post("/api/events", json=bodies.event(), timeout=0.5)
    assert klaviyo.client.get("/_sandbox/state").json()["counts"]["events"] == 1


def test_fault_settings_shape_and_validation(klaviyo: Running) -> None:
    shape = httpx.get(f"{klaviyo.url}/_sandbox/faults").json()
    assert set(shape) == set(FaultSettings().to_json()) | {
        "outage_remaining_seconds",
        "long_throttle_remaining_seconds",
    }
    merged = set_faults(klaviyo, latency_ms=5)
    merged = set_faults(klaviyo, drop_rate=0.0)
    assert merged["latency_ms"] == 5  # POST merges
    assert httpx.post(f"{klaviyo.url}/_sandbox/faults", json={"error_rates": {"418": 1}}).status_code == 400
    assert httpx.post(f"{klaviyo.url}/_sandbox/faults", json={"nonsense": 1}).status_code == 400
    assert httpx.post(f"{klaviyo.url}/_sandbox/faults", json={"drop_rate": 2}).status_code == 400


def test_reset_empties_state_and_stats(klaviyo: Running) -> None:
    klaviyo.client.post("/api/events", json=bodies.event())
    assert httpx.post(f"{klaviyo.url}/_sandbox/reset").status_code == 200
    state = httpx.get(f"{klaviyo.url}/_sandbox/state").json()
    assert state["counts"]["events"] == 0 and state["profiles"] == {}
    assert httpx.get(f"{klaviyo.url}/_sandbox/stats").json()["endpoints"]["POST /api/events"]["received"] == 0


def test_state_shows_subscriptions_in_the_api_shape(klaviyo: Running) -> None:
    klaviyo.client.post(
        "/api/profile-subscription-bulk-create-jobs",
        json=bodies.subscribe([bodies.email_subscribed("a@x.com")]),
    )
    klaviyo.client.post("/_sandbox/complete-jobs")
    (profile,) = httpx.get(f"{klaviyo.url}/_sandbox/state").json()["profiles"].values()
    assert profile["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"
    summary = httpx.get(f"{klaviyo.url}/_sandbox/state", params={"summary": "1"}).json()
    assert set(summary) == {"counts"} and summary["counts"]["profiles"] == 1


def test_record_file_has_one_line_per_request(start_sandbox: Callable[..., Running], tmp_path: Path) -> None:
    record = tmp_path / "requests.jsonl"
    running = start_sandbox(KlaviyoSandboxConfig(record_path=record))
    running.client.post("/api/events", json=bodies.event())
    running.client.get("/api/profiles", params={"page[size]": "5"})
    running.server.stop()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("POST", "/api/events", 202),
        ("GET", "/api/profiles", 200),
    ]
    first, second = lines
    assert first["headers"]["authorization"] == "Klaviyo-API-Key [REDACTED]"
    assert "pk_test" not in record.read_text()
    assert first["body"]["data"]["type"] == "event" and first["time"]
    assert second["query"] == "page%5Bsize%5D=5" and second["response"]["data"][0]["type"] == "profile"
