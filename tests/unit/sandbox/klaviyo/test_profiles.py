"""Profiles: identity, upsert 201/200/409, reading back with filters and cursors, bulk import, consent."""

from __future__ import annotations

import time
from typing import Any

from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import Running, wait_for


def import_profile(klaviyo: Running, **attributes: Any) -> Any:
    return klaviyo.client.post("/api/profile-import", json=bodies.profile_import(**attributes))


def test_profile_import_creates_201_then_updates_200(klaviyo: Running) -> None:
    created = import_profile(klaviyo, email="ann@example.com", first_name="Ann", properties={"tier": "gold"})
    assert created.status_code == 201
    profile_id = created.json()["data"]["id"]
    assert len(profile_id) == 26 and profile_id.isupper()
    updated = import_profile(klaviyo, email="ANN@example.com", last_name="Lee", properties={"vip": True})
    assert updated.status_code == 200
    attributes = updated.json()["data"]["attributes"]
    assert updated.json()["data"]["id"] == profile_id
    assert (attributes["first_name"], attributes["last_name"]) == ("Ann", "Lee")
    assert attributes["properties"] == {"tier": "gold", "vip": True}
    cleared = import_profile(klaviyo, email="ann@example.com", first_name=None)
    assert cleared.json()["data"]["attributes"]["first_name"] is None


def test_profiles_are_addressable_by_phone_and_external_id(klaviyo: Running) -> None:
    first = import_profile(klaviyo, phone_number="+447911123456", external_id="C-1").json()["data"]["id"]
    assert import_profile(klaviyo, external_id="C-1", first_name="X").json()["data"]["id"] == first
    assert import_profile(klaviyo, phone_number="+447911123456").json()["data"]["id"] == first


def test_identifiers_of_two_profiles_conflict_409(klaviyo: Running) -> None:
    import_profile(klaviyo, email="ann@example.com")
    phone_owner = import_profile(klaviyo, phone_number="+447911123456").json()["data"]["id"]
    response = import_profile(klaviyo, email="ann@example.com", phone_number="+447911123456")
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert error["code"] == "duplicate_profile"
    assert error["meta"]["duplicate_profile_id"] == phone_owner
    assert error["source"]["pointer"]


def test_phone_numbers_must_be_e164(klaviyo: Running) -> None:
    for bad in ("07700900123", "+44 7700 900123", "+1555"):
        response = import_profile(klaviyo, phone_number=bad)
        assert response.status_code == 400, bad
        assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/phone_number"
    assert import_profile(klaviyo, email="not-an-email").status_code == 400


def test_meta_patch_properties(klaviyo: Running) -> None:
    import_profile(klaviyo, email="a@example.com", properties={"tags": ["a"], "drop": 1})
    body = bodies.profile_import(email="a@example.com")
    body["data"]["meta"] = {"patch_properties": {"append": {"tags": "b"}, "unset": ["drop"]}}
    properties = klaviyo.client.post("/api/profile-import", json=body).json()["data"]["attributes"]["properties"]
    assert properties == {"tags": ["a", "b"]}


def test_get_profiles_filters(klaviyo: Running) -> None:
    ids = [
        import_profile(klaviyo, email=f"p{i}@example.com", external_id=f"E{i}").json()["data"]["id"] for i in range(5)
    ]
    found = klaviyo.client.get("/api/profiles", params={"filter": 'equals(email,"p3@example.com")'}).json()
    assert [p["id"] for p in found["data"]] == [ids[3]]
    found = klaviyo.client.get("/api/profiles", params={"filter": "any(external_id,['E1','E4'])"}).json()
    assert [p["id"] for p in found["data"]] == [ids[1], ids[4]]
    found = klaviyo.client.get("/api/profiles", params={"filter": f'equals(id,"{ids[2]}")'}).json()
    assert [p["id"] for p in found["data"]] == [ids[2]]
    bad = klaviyo.client.get("/api/profiles", params={"filter": 'equals(first_name,"x")'})
    assert bad.status_code == 400 and bad.json()["errors"][0]["source"]["parameter"] == "filter"


def test_get_profiles_greater_than_updated(klaviyo: Running) -> None:
    clock = [1_800_000_000.0]
    klaviyo.sandbox.clock = lambda: clock[0]
    try:
        import_profile(klaviyo, email="old@example.com")
        clock[0] += 3600
        import_profile(klaviyo, email="new@example.com")
        found = klaviyo.client.get(
            "/api/profiles", params={"filter": "greater-than(updated,2027-01-15T08:30:00Z)"}
        ).json()
        assert [p["attributes"]["email"] for p in found["data"]] == ["new@example.com"]
        quoted = klaviyo.client.get(
            "/api/profiles", params={"filter": 'less-than(updated,"2027-01-15T08:30:00+00:00")'}
        ).json()
        assert [p["attributes"]["email"] for p in quoted["data"]] == ["old@example.com"]
        not_a_date = klaviyo.client.get("/api/profiles", params={"filter": 'greater-than(updated,"soon")'})
        assert not_a_date.status_code == 400
    finally:
        klaviyo.sandbox.clock = time.time


def test_get_profiles_cursor_pagination(klaviyo: Running) -> None:
    for i in range(7):
        import_profile(klaviyo, email=f"p{i}@example.com")
    seen: list[str] = []
    url: str | None = "/api/profiles?page[size]=3"
    while url:
        page = klaviyo.client.get(url).json()
        assert len(page["data"]) <= 3
        seen += [p["attributes"]["email"] for p in page["data"]]
        url = page["links"]["next"]
    assert seen == [f"p{i}@example.com" for i in range(7)]
    assert klaviyo.client.get("/api/profiles", params={"page[size]": "101"}).status_code == 400
    assert klaviyo.client.get("/api/profiles", params={"page[size]": "100"}).status_code == 200


def test_subscriptions_only_when_asked(klaviyo: Running) -> None:
    import_profile(klaviyo, email="a@example.com")
    plain = klaviyo.client.get("/api/profiles").json()["data"][0]["attributes"]
    assert "subscriptions" not in plain
    asked = klaviyo.client.get("/api/profiles", params={"additional-fields[profile]": "subscriptions"}).json()
    marketing = asked["data"][0]["attributes"]["subscriptions"]["email"]["marketing"]
    assert marketing["consent"] == "NEVER_SUBSCRIBED"


def subscriptions_of(klaviyo: Running, email: str) -> dict[str, Any]:
    klaviyo.client.post("/_sandbox/complete-jobs")
    page = klaviyo.client.get(
        "/api/profiles",
        params={"filter": f'equals(email,"{email}")', "additional-fields[profile]": "subscriptions"},
    ).json()
    return page["data"][0]["attributes"]["subscriptions"]


def test_subscribe_then_unsubscribe_then_subscribe(klaviyo: Running) -> None:
    response = klaviyo.client.post(
        "/api/profile-subscription-bulk-create-jobs",
        json=bodies.subscribe([bodies.email_subscribed("a@x.com")]),
    )
    assert response.status_code == 202 and response.content == b""
    email = subscriptions_of(klaviyo, "a@x.com")["email"]["marketing"]
    assert email["consent"] == "SUBSCRIBED" and email["can_receive_email_marketing"] is True
    assert email["consent_timestamp"] and email["last_updated"]

    klaviyo.client.post(
        "/api/profile-subscription-bulk-delete-jobs",
        json=bodies.unsubscribe([bodies.email_unsubscribed("a@x.com")]),
    )
    email = subscriptions_of(klaviyo, "a@x.com")["email"]["marketing"]
    assert email["consent"] == "UNSUBSCRIBED" and email["can_receive_email_marketing"] is False
    assert [s["reason"] for s in email["suppression"]] == ["UNSUBSCRIBE"]

    klaviyo.client.post(
        "/api/profile-subscription-bulk-create-jobs",
        json=bodies.subscribe([bodies.email_subscribed("a@x.com")]),
    )
    email = subscriptions_of(klaviyo, "a@x.com")["email"]["marketing"]
    assert email["consent"] == "SUBSCRIBED" and email["suppression"] == []


def test_sms_subscription_needs_a_phone_and_is_tracked(klaviyo: Running) -> None:
    row = {"email": "a@x.com", "subscriptions": {"sms": {"marketing": {"consent": "SUBSCRIBED"}}}}
    response = klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe([row]))
    assert response.status_code == 400
    row["phone_number"] = "+447911123456"
    response = klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe([row]))
    assert response.status_code == 202
    sms = subscriptions_of(klaviyo, "a@x.com")["sms"]["marketing"]
    assert sms["consent"] == "SUBSCRIBED" and sms["can_receive_sms_marketing"] is True


def test_consented_at_only_with_historical_import(klaviyo: Running) -> None:
    row = bodies.email_subscribed("a@x.com", consented_at="2024-01-01T00:00:00Z")
    refused = klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe([row]))
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["source"]["pointer"].endswith("/subscriptions/email/marketing/consented_at")
    missing = bodies.subscribe([bodies.email_subscribed("a@x.com")], historical=True)
    assert klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=missing).status_code == 400
    future = bodies.subscribe([bodies.email_subscribed("a@x.com", consented_at="2999-01-01T00:00:00Z")], True)
    assert klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=future).status_code == 400
    ok = klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe([row], True))
    assert ok.status_code == 202
    assert subscriptions_of(klaviyo, "a@x.com")["email"]["marketing"]["consent_timestamp"].startswith("2024-01-01")


def test_subscription_batch_limits(klaviyo: Running) -> None:
    rows = [bodies.email_subscribed(f"p{i}@x.com") for i in range(1001)]
    response = klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe(rows))
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profiles/data"
    assert (
        klaviyo.client.post(
            "/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe(rows[:1000])
        ).status_code
        == 202
    )
    unsubscribes = [bodies.email_unsubscribed(f"p{i}@x.com") for i in range(101)]
    assert (
        klaviyo.client.post(
            "/api/profile-subscription-bulk-delete-jobs", json=bodies.unsubscribe(unsubscribes)
        ).status_code
        == 400
    )
    assert (
        klaviyo.client.post(
            "/api/profile-subscription-bulk-delete-jobs", json=bodies.unsubscribe(unsubscribes[:100])
        ).status_code
        == 202
    )


def test_bulk_import_job_progresses_and_reports_row_errors(klaviyo: Running) -> None:
    import_profile(klaviyo, email="taken@example.com")
    import_profile(klaviyo, phone_number="+447911123456")
    rows = [
        {"email": "new@example.com", "first_name": "N"},
        {"email": "taken@example.com", "phone_number": "+447911123456"},
    ]
    response = klaviyo.client.post("/api/profile-bulk-import-jobs", json=bodies.bulk_import(rows))
    assert response.status_code == 202
    job = response.json()["data"]
    assert job["type"] == "profile-bulk-import-job" and job["attributes"]["status"] == "queued"
    assert job["attributes"]["total_count"] == 2
    statuses = set()

    def complete() -> bool:
        attributes = klaviyo.client.get(f"/api/profile-bulk-import-jobs/{job['id']}").json()["data"]["attributes"]
        statuses.add(attributes["status"])
        return attributes["status"] == "complete"

    wait_for(complete)
    assert statuses <= {"queued", "processing", "complete"}
    final = klaviyo.client.get(f"/api/profile-bulk-import-jobs/{job['id']}").json()["data"]["attributes"]
    assert (final["completed_count"], final["failed_count"]) == (1, 1)
    errors = klaviyo.client.get(f"/api/profile-bulk-import-jobs/{job['id']}/import-errors").json()["data"]
    assert len(errors) == 1
    assert errors[0]["attributes"]["code"] == "duplicate_profile"
    assert errors[0]["attributes"]["source"]["pointer"] == "/data/attributes/profiles/data/1"
    listed = klaviyo.client.get("/api/profile-bulk-import-jobs").json()["data"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert klaviyo.client.get("/api/profile-bulk-import-jobs/NOPE").status_code == 404


def test_bulk_import_limits_and_whole_request_failure(klaviyo: Running) -> None:
    too_many = bodies.bulk_import([{"email": f"p{i}@x.com"} for i in range(10_001)])
    assert klaviyo.client.post("/api/profile-bulk-import-jobs", json=too_many).status_code == 400
    one_bad = bodies.bulk_import([{"email": "ok@x.com"}, {"phone_number": "12345"}])
    response = klaviyo.client.post("/api/profile-bulk-import-jobs", json=one_bad)
    assert response.status_code == 400
    assert (
        response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profiles/data/1/attributes/phone_number"
    )


def test_data_privacy_deletion_removes_the_profile_and_its_events(klaviyo: Running) -> None:
    klaviyo.client.post("/api/events", json=bodies.event())
    assert (
        klaviyo.client.post("/api/data-privacy-deletion-jobs", json=bodies.deletion("ann@example.com")).status_code
        == 202
    )
    klaviyo.client.post("/_sandbox/complete-jobs")
    state = klaviyo.client.get("/_sandbox/state").json()
    assert state["profiles"] == {} and state["counts"]["events"] == 0 and len(state["deleted_profiles"]) == 1
