"""Events: de-duplication per (profile, metric, unique_id), backfill, limits, bulk jobs, reading back."""

from __future__ import annotations

from typing import Any

from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import Running


def state(klaviyo: Running) -> dict[str, Any]:
    klaviyo.client.post("/_sandbox/complete-jobs")
    return dict(klaviyo.client.get("/_sandbox/state").json())


def test_duplicate_unique_id_is_accepted_but_not_stored(klaviyo: Running) -> None:
    for _ in range(3):
        assert klaviyo.client.post("/api/events", json=bodies.event(unique_id="o-1")).status_code == 202
    other_metric = bodies.event(metric="Fulfilled Order", unique_id="o-1")
    assert klaviyo.client.post("/api/events", json=other_metric).status_code == 202
    other_profile = bodies.event(unique_id="o-1")
    other_profile["data"]["attributes"]["profile"] = bodies.profile_ref(email="bob@example.com")
    klaviyo.client.post("/api/events", json=other_profile)
    current = state(klaviyo)
    assert len(current["events"]["Placed Order"]) == 2
    assert len(current["events"]["Fulfilled Order"]) == 1
    assert current["duplicates_suppressed"] == 2
    assert klaviyo.client.get("/_sandbox/stats").json()["duplicates_suppressed"] == 2


def test_backfill_value_and_time_are_stored(klaviyo: Running) -> None:
    body = bodies.event(backfill=True, value=12.5, value_currency="GBP", time="2024-03-01T10:00:00+00:00")
    assert klaviyo.client.post("/api/events", json=body).status_code == 202
    (stored,) = state(klaviyo)["events"]["Placed Order"]
    assert stored["backfill"] is True and stored["value"] == 12.5 and stored["value_currency"] == "GBP"
    assert stored["time"] == "2024-03-01T10:00:00+00:00" and stored["unique_id"] == "order-1"


def test_event_time_window_and_metric_name_length(klaviyo: Running) -> None:
    for when in ("1999-12-31T00:00:00Z", "2999-01-01T00:00:00Z"):
        response = klaviyo.client.post("/api/events", json=bodies.event(time=when))
        assert response.status_code == 400
        assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/time"
    long_name = klaviyo.client.post("/api/events", json=bodies.event(metric="x" * 128))
    assert long_name.status_code == 400
    assert long_name.json()["errors"][0]["source"]["pointer"] == "/data/attributes/metric/data/attributes/name"
    assert klaviyo.client.post("/api/events", json=bodies.event(metric="x" * 127)).status_code == 202


def test_event_needs_a_profile_identifier(klaviyo: Running) -> None:
    body = bodies.event()
    body["data"]["attributes"]["profile"] = bodies.profile_ref(first_name="Nobody")
    assert klaviyo.client.post("/api/events", json=body).status_code == 400


def test_bulk_events_are_stored_and_deduplicated(klaviyo: Running) -> None:
    body = bodies.bulk_events(
        [
            (
                {"email": "a@example.com"},
                [bodies.bulk_event(unique_id="1"), bodies.bulk_event(unique_id="2")],
            ),
            ({"email": "b@example.com"}, [bodies.bulk_event(unique_id="1")]),
        ]
    )
    response = klaviyo.client.post("/api/event-bulk-create-jobs", json=body)
    assert response.status_code == 202 and response.content == b""
    klaviyo.client.post("/api/event-bulk-create-jobs", json=body)  # a retry of the whole request
    current = state(klaviyo)
    assert len(current["events"]["Placed Order"]) == 3
    assert current["duplicates_suppressed"] == 3


def test_repeated_unique_id_inside_one_bulk_request_fails_the_request(klaviyo: Running) -> None:
    body = bodies.bulk_events([({"email": "a@example.com"}, [bodies.bulk_event(unique_id="1")] * 2)])
    response = klaviyo.client.post("/api/event-bulk-create-jobs", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"].endswith("/events/data/1/attributes/unique_id")
    assert state(klaviyo)["counts"]["events"] == 0


def test_bulk_events_limit_1000(klaviyo: Running) -> None:
    events = [bodies.bulk_event(unique_id=str(i)) for i in range(1001)]
    body = bodies.bulk_events([({"email": "a@example.com"}, events)])
    assert klaviyo.client.post("/api/event-bulk-create-jobs", json=body).status_code == 400
    body = bodies.bulk_events([({"email": "a@example.com"}, events[:1000])])
    assert klaviyo.client.post("/api/event-bulk-create-jobs", json=body).status_code == 202


def test_no_status_endpoint_for_event_or_subscription_jobs(klaviyo: Running) -> None:
    assert klaviyo.client.get("/api/event-bulk-create-jobs/ANY").status_code == 404
    assert klaviyo.client.get("/api/profile-subscription-bulk-create-jobs/ANY").status_code == 404


def test_get_events_filtered_by_metric_and_profile(klaviyo: Running) -> None:
    klaviyo.client.post("/api/events", json=bodies.event(unique_id="1"))
    klaviyo.client.post("/api/events", json=bodies.event(metric="Fulfilled Order", unique_id="1"))
    other = bodies.event(unique_id="2")
    other["data"]["attributes"]["profile"] = bodies.profile_ref(email="bob@example.com")
    klaviyo.client.post("/api/events", json=other)
    current = state(klaviyo)
    placed = current["metrics"]["Placed Order"]
    ann = next(p for p in current["profiles"].values() if p["email"] == "ann@example.com")["id"]
    by_metric = klaviyo.client.get("/api/events", params={"filter": f'equals(metric_id,"{placed}")'}).json()
    assert len(by_metric["data"]) == 2
    both = klaviyo.client.get(
        "/api/events", params={"filter": f'equals(metric_id,"{placed}"),equals(profile_id,"{ann}")'}
    ).json()["data"]
    assert len(both) == 1
    assert both[0]["attributes"]["event_properties"]["$event_id"] == "1"
    assert both[0]["relationships"]["metric"]["data"]["id"] == placed
    metrics = klaviyo.client.get("/api/metrics").json()["data"]
    assert {m["attributes"]["name"] for m in metrics} == {"Placed Order", "Fulfilled Order"}
