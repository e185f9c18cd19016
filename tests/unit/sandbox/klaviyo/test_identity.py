"""Identity resolution over HTTP: which profile a request names, when it is created, when it conflicts,
and the faults that bear on it (invalid_phone, per-endpoint latency, profile_job_seconds).
Each case is one row of docs/sandbox.md "Identity resolution"."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import FakeClock, Running, wait_for

UNKNOWN_ID = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
INVALID_PHONE = "+1555"  # E.164-shaped prefix, but no valid number
PARTIAL_FAILURE = "X-Klaviyo-Partial-Failure"


def upsert(klaviyo: Running, profile_id: str | None = None, **attributes: Any) -> httpx.Response:
    return klaviyo.client.post("/api/profile-import", json=bodies.profile_import(profile_id, **attributes))


def created_id(klaviyo: Running, **attributes: Any) -> str:
    response = upsert(klaviyo, **attributes)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def stored(klaviyo: Running) -> dict[str, Any]:
    profiles: dict[str, Any] = klaviyo.client.get("/_sandbox/state").json()["profiles"]
    return profiles


def set_faults(klaviyo: Running, **changes: Any) -> dict[str, Any]:
    response = httpx.post(f"{klaviyo.url}/_sandbox/faults", json=changes)
    assert response.status_code == 200, response.text
    faults: dict[str, Any] = response.json()
    return faults


def finish_jobs(klaviyo: Running) -> dict[str, Any]:
    assert httpx.post(f"{klaviyo.url}/_sandbox/complete-jobs").json() == {"pending": 0}
    jobs: dict[str, Any] = klaviyo.client.get("/_sandbox/state").json()["jobs"]
    return jobs


def filtered_ids(klaviyo: Running, expression: str) -> list[str]:
    response = klaviyo.client.get("/api/profiles", params={"filter": expression})
    assert response.status_code == 200, response.text
    return [profile["id"] for profile in response.json()["data"]]


# --- POST /api/profile-import ------------------------------------------------------------------------------


def test_an_existing_email_with_a_new_phone_updates_that_profile(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="ann@example.com")
    response = upsert(klaviyo, email="ann@example.com", phone_number="+447911123456")
    assert (response.status_code, response.json()["data"]["id"]) == (200, ann)
    assert stored(klaviyo)[ann]["phone_number"] == "+447911123456"


def test_an_existing_phone_with_a_new_email_changes_the_email(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="ann@example.com", phone_number="+447911123456")
    response = upsert(klaviyo, email="ann.lee@example.com", phone_number="+447911123456")
    assert (response.status_code, response.json()["data"]["id"]) == (200, ann)
    assert filtered_ids(klaviyo, 'equals(email,"ann@example.com")') == []
    assert filtered_ids(klaviyo, 'equals(email,"ann.lee@example.com")') == [ann]
    assert len(stored(klaviyo)) == 1


def test_an_id_with_free_identifiers_updates_them_on_that_profile(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="ann@example.com", phone_number="+447911123456")
    response = upsert(klaviyo, ann, email="jill@example.com", phone_number="+447911123457", external_id="C-9")
    assert (response.status_code, response.json()["data"]["id"]) == (200, ann)
    profile = stored(klaviyo)[ann]
    assert (profile["email"], profile["phone_number"], profile["external_id"]) == (
        "jill@example.com",
        "+447911123457",
        "C-9",
    )


def test_an_id_with_another_profiles_email_is_a_409_and_changes_nothing(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="ann@example.com")
    bob = created_id(klaviyo, email="bob@example.com")
    response = upsert(klaviyo, ann, email="BOB@example.com", first_name="Changed")
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert (error["code"], error["meta"]["duplicate_profile_id"]) == ("duplicate_profile", bob)
    profiles = stored(klaviyo)
    assert (profiles[ann]["email"], profiles[ann]["first_name"]) == ("ann@example.com", None)


def test_an_unknown_id_is_a_404_and_creates_nothing(klaviyo: Running) -> None:
    response = upsert(klaviyo, UNKNOWN_ID, email="new@example.com")
    assert response.status_code == 404
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/id"
    assert stored(klaviyo) == {}


def test_emails_match_case_insensitively_in_upserts_and_filters(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="Ann.Lee@Example.COM")
    assert filtered_ids(klaviyo, 'equals(email,"ann.lee@example.com")') == [ann]
    assert filtered_ids(klaviyo, 'any(email,["ANN.LEE@EXAMPLE.COM","nobody@example.com"])') == [ann]
    assert filtered_ids(klaviyo, 'or(equals(email,"ann.lee@example.com"),equals(email,"x@y.com"))') == [ann]
    updated = upsert(klaviyo, email="ann.lee@example.com", first_name="Ann")
    assert (updated.status_code, updated.json()["data"]["id"]) == (200, ann)
    assert len(stored(klaviyo)) == 1


# --- bulk import -------------------------------------------------------------------------------------------


def test_bulk_import_rows_follow_the_profile_import_rules_with_errors_per_row(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="ann@example.com")
    bob = created_id(klaviyo, email="bob@example.com")
    body = bodies.bulk_import(
        [
            {"email": "ANN@example.com", "phone_number": "+447911123456"},  # 0: updates ann
            {"email": "carl@example.com"},  # 1: new profile
            {"email": "bob@example.com"},  # 2: id ann + bob's email: conflict
            {"email": "dora@example.com"},  # 3: unknown id
        ]
    )
    body["data"]["attributes"]["profiles"]["data"][2]["id"] = ann
    body["data"]["attributes"]["profiles"]["data"][3]["id"] = UNKNOWN_ID
    job_id = klaviyo.client.post("/api/profile-bulk-import-jobs", json=body).json()["data"]["id"]
    job = finish_jobs(klaviyo)[job_id]
    assert (job["completed_count"], job["failed_count"]) == (2, 2)
    errors = klaviyo.client.get(f"/api/profile-bulk-import-jobs/{job_id}/import-errors").json()["data"]
    by_row = {e["attributes"]["source"]["pointer"].rsplit("/", 1)[1]: e["attributes"]["code"] for e in errors}
    assert by_row == {"2": "duplicate_profile", "3": "not_found"}
    profiles = stored(klaviyo)
    assert profiles[ann]["phone_number"] == "+447911123456"
    assert profiles[bob]["email"] == "bob@example.com"
    # one profile per address; the stored spelling is the one last sent
    assert sorted(p["email"] for p in profiles.values()) == ["ANN@example.com", "bob@example.com", "carl@example.com"]


# --- subscribe / unsubscribe -------------------------------------------------------------------------------


def subscribe_rows(klaviyo: Running, rows: list[dict[str, Any]]) -> dict[str, Any]:
    body = bodies.subscribe([{k: v for k, v in row.items() if k != "id"} for row in rows])
    for resource, row in zip(body["data"]["attributes"]["profiles"]["data"], rows, strict=True):
        if "id" in row:
            resource["id"] = row["id"]
    response = klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=body)
    assert response.status_code == 202, response.text
    (job,) = finish_jobs(klaviyo).values()
    return dict(job)


def email_consent(profile: dict[str, Any]) -> str:
    return str(profile["subscriptions"]["email"]["marketing"]["consent"])


def test_subscribing_an_unknown_email_creates_its_profile(klaviyo: Running) -> None:
    job = subscribe_rows(klaviyo, [bodies.email_subscribed("New@Example.com")])
    assert job["failed_count"] == 0
    (profile,) = stored(klaviyo).values()
    assert (profile["email"], email_consent(profile)) == ("New@Example.com", "SUBSCRIBED")


def test_subscribe_looks_up_by_id_and_sets_a_free_email_on_it(klaviyo: Running) -> None:
    ann = created_id(klaviyo, external_id="C-1")
    job = subscribe_rows(klaviyo, [{**bodies.email_subscribed("ann@example.com"), "id": ann}])
    assert job["failed_count"] == 0
    profiles = stored(klaviyo)
    assert list(profiles) == [ann]
    assert (profiles[ann]["email"], email_consent(profiles[ann])) == ("ann@example.com", "SUBSCRIBED")


def test_subscribe_with_an_id_and_another_profiles_email_fails_the_row(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="ann@example.com")
    bob = created_id(klaviyo, email="bob@example.com")
    job = subscribe_rows(
        klaviyo,
        [
            {**bodies.email_subscribed("bob@example.com"), "id": ann},
            {**bodies.email_subscribed("x@y.com"), "id": UNKNOWN_ID},
        ],
    )
    assert [(e["code"], e["source"]["pointer"]) for e in job["errors"]] == [
        ("duplicate_profile", "/data/attributes/profiles/data/0"),
        ("not_found", "/data/attributes/profiles/data/1"),
    ]
    profiles = stored(klaviyo)
    assert [email_consent(profiles[p]) for p in (ann, bob)] == ["NEVER_SUBSCRIBED", "NEVER_SUBSCRIBED"]
    assert len(profiles) == 2


def test_unsubscribe_reaches_each_address_owner_and_creates_unknown_ones(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="ann@example.com")
    bob = created_id(klaviyo, phone_number="+447911123456")
    both = {
        "email": "ANN@example.com",
        "phone_number": "+447911123456",
        "subscriptions": {
            "email": {"marketing": {"consent": "UNSUBSCRIBED"}},
            "sms": {"marketing": {"consent": "UNSUBSCRIBED"}},
        },
    }
    body = bodies.unsubscribe([both, bodies.email_unsubscribed("ghost@example.com")])
    assert klaviyo.client.post("/api/profile-subscription-bulk-delete-jobs", json=body).status_code == 202
    assert all(job["failed_count"] == 0 for job in finish_jobs(klaviyo).values())
    profiles = stored(klaviyo)
    assert email_consent(profiles[ann]) == "UNSUBSCRIBED"
    assert profiles[ann]["subscriptions"]["sms"]["marketing"]["consent"] == "NEVER_SUBSCRIBED"
    assert profiles[bob]["subscriptions"]["sms"]["marketing"]["consent"] == "UNSUBSCRIBED"
    assert profiles[bob]["email"] is None
    (ghost,) = [p for p in profiles.values() if p["email"] == "ghost@example.com"]
    assert email_consent(ghost) == "UNSUBSCRIBED"


# --- events ------------------------------------------------------------------------------------------------


def event_for(profile: dict[str, Any]) -> dict[str, Any]:
    body = bodies.event()
    body["data"]["attributes"]["profile"] = {"data": {"type": "profile", **profile}}
    return body


def test_an_event_for_an_unknown_id_is_a_404_and_stores_nothing(klaviyo: Running) -> None:
    response = klaviyo.client.post("/api/events", json=event_for({"id": UNKNOWN_ID, "attributes": {}}))
    assert response.status_code == 404
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profile/data/id"
    counts = klaviyo.client.get("/_sandbox/state").json()["counts"]
    assert (counts["profiles"], counts["events"]) == (0, 0)


def test_an_event_with_an_id_and_another_profiles_email_goes_to_the_id(klaviyo: Running) -> None:
    ann = created_id(klaviyo, email="ann@example.com")
    bob = created_id(klaviyo, email="bob@example.com")
    body = event_for({"id": ann, "attributes": {"email": "bob@example.com"}})
    assert klaviyo.client.post("/api/events", json=body).status_code == 202
    (event,) = klaviyo.client.get("/_sandbox/state").json()["events"]["Placed Order"]
    assert event["profile_id"] == ann
    profiles = stored(klaviyo)
    assert (profiles[ann]["email"], profiles[bob]["email"]) == ("ann@example.com", "bob@example.com")


# --- the invalid_phone fault -------------------------------------------------------------------------------


def test_an_invalid_phone_is_refused_by_default(klaviyo: Running) -> None:
    assert klaviyo.client.get("/_sandbox/faults").json()["invalid_phone"] == "refuse"
    response = upsert(klaviyo, email="ann@example.com", phone_number=INVALID_PHONE)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/phone_number"
    assert PARTIAL_FAILURE not in response.headers


def test_drop_imports_the_profile_without_the_phone_and_says_so(klaviyo: Running) -> None:
    assert set_faults(klaviyo, invalid_phone="drop")["invalid_phone"] == "drop"
    created = upsert(klaviyo, email="ann@example.com", phone_number=INVALID_PHONE, first_name="Ann")
    assert created.status_code == 201
    assert created.headers[PARTIAL_FAILURE] == "phone_number"
    assert created.json()["data"]["attributes"]["phone_number"] is None
    upsert(klaviyo, email="ann@example.com", phone_number="+447911123456")
    kept = upsert(klaviyo, email="ann@example.com", phone_number=INVALID_PHONE)
    assert (kept.status_code, kept.headers[PARTIAL_FAILURE]) == (200, "phone_number")
    assert kept.json()["data"]["attributes"]["phone_number"] == "+447911123456"  # ignored, not cleared
    assert PARTIAL_FAILURE not in upsert(klaviyo, email="ann@example.com").headers
    phone_only = upsert(klaviyo, phone_number=INVALID_PHONE)
    assert phone_only.status_code == 400
    assert phone_only.json()["errors"][0]["source"]["pointer"] == "/data/attributes/phone_number"


def test_drop_applies_to_events_bulk_imports_and_subscriptions_not_unsubscriptions(klaviyo: Running) -> None:
    set_faults(klaviyo, invalid_phone="drop")
    event = event_for({"attributes": {"email": "ann@example.com", "phone_number": INVALID_PHONE}})
    response = klaviyo.client.post("/api/events", json=event)
    assert (response.status_code, response.headers[PARTIAL_FAILURE]) == (202, "phone_number")
    grouped = bodies.bulk_events([({"email": "bob@example.com", "phone_number": INVALID_PHONE}, [bodies.bulk_event()])])
    response = klaviyo.client.post("/api/event-bulk-create-jobs", json=grouped)
    assert (response.status_code, response.headers[PARTIAL_FAILURE]) == (202, "phone_number")
    rows = [{"email": "carl@example.com", "phone_number": INVALID_PHONE}, {"email": "dora@example.com"}]
    response = klaviyo.client.post("/api/profile-bulk-import-jobs", json=bodies.bulk_import(rows))
    assert (response.status_code, response.headers[PARTIAL_FAILURE]) == (202, "phone_number")
    both_channels = {
        "email": "erin@example.com",
        "phone_number": INVALID_PHONE,
        "subscriptions": {
            "email": {"marketing": {"consent": "SUBSCRIBED"}},
            "sms": {"marketing": {"consent": "SUBSCRIBED"}},
        },
    }
    response = klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe([both_channels]))
    assert (response.status_code, response.headers[PARTIAL_FAILURE]) == (202, "phone_number")
    unsubscribe = {**both_channels, "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}
    response = klaviyo.client.post("/api/profile-subscription-bulk-delete-jobs", json=bodies.unsubscribe([unsubscribe]))
    assert response.status_code == 400
    finish_jobs(klaviyo)
    profiles = {p["email"]: p for p in stored(klaviyo).values()}
    assert sorted(profiles) == [f"{name}@example.com" for name in ("ann", "bob", "carl", "dora", "erin")]
    assert all(p["phone_number"] is None for p in profiles.values())
    assert email_consent(profiles["erin@example.com"]) == "SUBSCRIBED"
    assert len(klaviyo.client.get("/_sandbox/state").json()["events"]["Placed Order"]) == 2


def test_fault_settings_refuse_unknown_modes_and_negative_holds(klaviyo: Running) -> None:
    for bad in ({"invalid_phone": "ignore"}, {"profile_job_seconds": -1}):
        assert httpx.post(f"{klaviyo.url}/_sandbox/faults", json=bad).status_code == 400
    assert set_faults(klaviyo, profile_job_seconds=None)["profile_job_seconds"] is None


# --- holding profile upserts back --------------------------------------------------------------------------


def test_latency_can_target_the_profile_upsert_endpoints_only(klaviyo: Running) -> None:
    set_faults(klaviyo, latency_ms=500, endpoints=["POST /api/profile-import", "POST /api/profile-bulk-import-jobs"])

    def timed(call: Any) -> float:
        started = time.monotonic()
        call()
        return time.monotonic() - started

    assert timed(lambda: upsert(klaviyo, email="ann@example.com")) >= 0.5
    bulk = bodies.bulk_import([{"email": "bob@example.com"}])
    assert timed(lambda: klaviyo.client.post("/api/profile-bulk-import-jobs", json=bulk)) >= 0.5
    assert timed(lambda: klaviyo.client.get("/api/profiles")) < 0.4
    assert timed(lambda: klaviyo.client.post("/api/events", json=bodies.event())) < 0.4


def test_profile_job_seconds_holds_bulk_imports_in_processing(start_sandbox: Any) -> None:
    clock = FakeClock()
    running: Running = start_sandbox(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.15), clock)
    set_faults(running, profile_job_seconds=30)

    def submit(email: str) -> str:
        response = running.client.post("/api/profile-bulk-import-jobs", json=bodies.bulk_import([{"email": email}]))
        return str(response.json()["data"]["id"])

    def status(job_id: str) -> str:
        return str(running.client.get(f"/api/profile-bulk-import-jobs/{job_id}").json()["data"]["attributes"]["status"])

    held = submit("ann@example.com")
    clock.advance(10)
    assert status(held) == "processing"
    assert stored(running) == {}
    clock.advance(20.2)
    assert status(held) == "complete"
    assert [p["email"] for p in stored(running).values()] == ["ann@example.com"]
    set_faults(running, profile_job_seconds=None)  # today's pace again: one step queued, one processing
    quick = submit("bob@example.com")
    clock.advance(0.31)
    assert status(quick) == "complete"


def test_lifting_profile_job_seconds_releases_pending_jobs(start_sandbox: Any) -> None:
    running: Running = start_sandbox(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.05))
    set_faults(running, profile_job_seconds=3600)
    body = bodies.bulk_import([{"email": "ann@example.com"}])
    job_id = running.client.post("/api/profile-bulk-import-jobs", json=body).json()["data"]["id"]
    wait_for(
        lambda: (
            running.client.get(f"/api/profile-bulk-import-jobs/{job_id}").json()["data"]["attributes"]["status"]
            == "processing"
        )
    )
    time.sleep(0.2)  # several job steps: without the hold it would be complete by now
    assert running.client.get("/_sandbox/state").json()["counts"]["profiles"] == 0
    set_faults(running, profile_job_seconds=0)
    wait_for(lambda: running.client.get("/_sandbox/state").json()["counts"]["profiles"] == 1)


@pytest.mark.parametrize("mode", ["refuse", "drop"])
def test_a_phone_only_profile_with_an_invalid_phone_is_always_400(klaviyo: Running, mode: str) -> None:
    set_faults(klaviyo, invalid_phone=mode)
    response = klaviyo.client.post("/api/events", json=event_for({"attributes": {"phone_number": INVALID_PHONE}}))
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profile/data/attributes/phone_number"
