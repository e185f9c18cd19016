"""The client against the Klaviyo sandbox on loopback: real HTTP, real Redis limiter."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.endpoints import Tier
from connectors.klaviyo.errors import (
    DuplicateProfileError,
    EndpointParkedError,
    PermanentError,
    RateLimitedLocally,
    ThrottledError,
    TransientError,
)
from connectors.klaviyo.limiter import FleetRateLimiter
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread

pytestmark = pytest.mark.integration

API_KEY = "pk_test_0123456789abcdef"
REVISION = "2026-10-15"
ClientFactory = Callable[..., KlaviyoClient]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ServerThread]:
    server = ServerThread(create_app(KlaviyoSandboxConfig(api_key=API_KEY, job_step_seconds=0.05)))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def control(sandbox: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=10) as http:
        http.post("/_sandbox/reset").raise_for_status()
        http.post("/_sandbox/faults", json={"clear": True}).raise_for_status()
        yield http
        http.post("/_sandbox/faults", json={"clear": True})


@pytest.fixture
def limiter(limiter_factory: Callable[..., FleetRateLimiter]) -> FleetRateLimiter:
    return limiter_factory()


@pytest.fixture
def make_client(sandbox: ServerThread, limiter: FleetRateLimiter) -> Iterator[ClientFactory]:
    clients: list[KlaviyoClient] = []

    def make(**kwargs: Any) -> KlaviyoClient:
        options: dict[str, Any] = {"limiter": limiter, "lane": "fast", **kwargs}
        client = KlaviyoClient(sandbox.url, options.pop("api_key", API_KEY), REVISION, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def received(control: httpx.Client, key: str) -> int:
    stats = control.get("/_sandbox/stats").json()["endpoints"]
    return int(stats.get(key, {}).get("received", 0))


def set_faults(control: httpx.Client, **faults: Any) -> None:
    control.post("/_sandbox/faults", json=faults).raise_for_status()


def test_profile_import_created_then_updated(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client()
    first = client.import_profile({"email": "ada@example.com", "external_id": "C1", "first_name": "Ada"})
    assert first.status == 201 and first.created and first.id
    second = client.import_profile({"email": "ada@example.com", "last_name": "Lovelace"})
    assert second.status == 200 and second.id == first.id
    assert "RateLimit-Remaining".lower() in {k.lower() for k in second.headers}


def test_duplicate_profile(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client()
    by_email = client.import_profile({"email": "ada@example.com"}).id
    by_phone = client.import_profile({"phone_number": "+12125550100"}).id
    with pytest.raises(DuplicateProfileError) as info:
        client.import_profile({"email": "ada@example.com", "phone_number": "+12125550100"})
    assert info.value.status == 409
    assert info.value.duplicate_profile_id in (by_email, by_phone)
    assert "ada@example.com" not in str(info.value) and "+12125550100" not in str(info.value)


def test_undeclared_field_is_permanent_with_pointer(
    control: httpx.Client, make_client: ClientFactory
) -> None:
    """Builders refuse undeclared fields; a raw body shows how Klaviyo (the sandbox) answers one."""
    client = make_client()
    body = {
        "data": {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": "ada@example.com",
                                "last_name": "Lovelace",
                                "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
                            },
                        }
                    ]
                }
            },
        }
    }
    with pytest.raises(PermanentError) as info:
        client.request("subscribe", json=body)
    error = info.value
    assert error.status == 400 and not isinstance(error, TransientError)
    pointers = [item.pointer or "" for item in error.errors]
    assert any(p.startswith("/data/attributes/profiles/data/0/attributes") for p in pointers), pointers
    assert any("last_name" in (item.detail or "") + (item.pointer or "") for item in error.errors)


def test_bulk_400_names_payload_rows(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client()
    payloads = [{"email": f"p{i}@example.com"} for i in range(5)]
    payloads[3] = {"email": "not-an-email"}
    with pytest.raises(PermanentError) as info:
        client.bulk_import_profiles(payloads)
    assert list(info.value.payload_rows) == [3]


def test_bulk_profile_import_job_and_errors(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client(lane="batch")
    job_id = client.bulk_import_profiles(
        [{"email": f"p{i}@example.com", "first_name": "P"} for i in range(3)]
    )
    deadline = time.monotonic() + 10
    while (job := client.get_profile_import_job(job_id))["attributes"]["status"] != "complete":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    assert job["attributes"]["completed_count"] == 3
    assert list(client.iter_profile_import_errors(job_id)) == []


def test_events_single_and_bulk_then_read_back(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client()
    event = {
        "metric": "Placed Order",
        "profile": {"email": "ada@example.com"},
        "properties": {"OrderId": "SO1"},
        "time": "2026-01-02T03:04:05+00:00",
        "value": 10.0,
        "unique_id": "SO1",
    }
    assert client.create_event(event).status == 202
    bulk = [
        {**event, "unique_id": f"SO{i}", "profile": {"email": f"p{i % 3}@example.com"}} for i in range(2, 12)
    ]
    assert client.bulk_create_events(bulk).status == 202
    control.post("/_sandbox/complete-jobs").raise_for_status()  # bulk jobs run asynchronously
    profiles = list(client.get_profiles('any(email,["ada@example.com","p1@example.com"])', page_size=1))
    assert {p["attributes"]["email"] for p in profiles} == {"ada@example.com", "p1@example.com"}
    profile_id = next(p["id"] for p in profiles if p["attributes"]["email"] == "ada@example.com")
    events = list(client.get_events(f'equals(profile_id,"{profile_id}")'))
    assert len(events) == 1 and events[0]["attributes"]["event_properties"]["OrderId"] == "SO1"


def test_subscribe_and_unsubscribe(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client()
    responses = client.subscribe(
        [
            {
                "channel": "email",
                "profile": {"email": "ada@example.com"},
                "list_id": None,
            },
            {"channel": "sms", "profile": {"phone_number": "+12125550100"}, "list_id": None},
        ]
    )
    assert [r.status for r in responses] == [202, 202]
    [gone] = client.unsubscribe([{"channel": "email", "profile": {"email": "ada@example.com"}}])
    assert gone.status == 202


def test_catalog_round_trip(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client()
    item = {
        "external_id": "S1",
        "title": "Shirt",
        "description": "d",
        "url": "https://x.example/S1",
        "price": 5,
    }
    assert client.upsert_catalog_item(item).status == 201
    assert client.upsert_catalog_item({**item, "title": "Shirt 2"}).status == 200  # 409 -> PATCH
    variant = {
        "external_id": "S1-M",
        "item_external_id": "S1",
        "title": "Shirt M",
        "description": "d",
        "sku": "S1-M",
        "inventory_quantity": 2,
        "inventory_policy": 1,
        "price": 5,
        "url": "https://x.example/S1",
    }
    assert client.create_catalog_variant(variant).status == 201
    updated = client.update_catalog_variant("S1-M", {"inventory_quantity": 0})
    assert updated.data["data"]["attributes"]["inventory_quantity"] == 0
    rows = [{**variant, "external_id": f"S1-{i}", "sku": f"S1-{i}"} for i in range(3)]
    job_id = client.bulk_create_variants(rows)
    deadline = time.monotonic() + 10
    while client.get_catalog_job("variant-create", job_id)["attributes"]["status"] != "complete":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    job_id = client.bulk_update_variants(
        [{"external_id": f"S1-{i}", "inventory_quantity": 9} for i in range(3)]
    )
    assert job_id
    retired = client.retire_catalog_entry({"external_id": "S1-M", "kind": "variant", "action": "unpublish"})
    assert retired.data["data"]["attributes"]["published"] is False


def test_deletion(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client()
    client.import_profile({"email": "ada@example.com"})
    assert client.request_profile_deletion({"profile": {"email": "ada@example.com"}}).status == 202


def test_429_pauses_the_endpoint_fleet_wide(
    control: httpx.Client, make_client: ClientFactory, limiter: FleetRateLimiter
) -> None:
    set_faults(control, other_integration_share=0.99)  # Klaviyo leaves the account 1/s and 8/min
    stranger = make_client(limiter=None)  # another integration on the same account, outside our fleet
    # The stranger uses up the whole steady window (not only this second's burst, which the next second
    # would refill): only then is the fleet's next request sure to meet a 429, whatever the clock says.
    deadline = time.monotonic() + 30
    for i in range(200):
        assert time.monotonic() < deadline, "the steady window never filled up"
        try:
            stranger.import_profile({"email": f"s{i}@example.com"})
        except ThrottledError as exc:
            if exc.retry_after and exc.retry_after > 1:
                break
            time.sleep(0.25)
    worker_a = make_client(max_inline_wait=0)
    worker_b = make_client(max_inline_wait=0)
    with pytest.raises(ThrottledError) as info:
        worker_a.import_profile({"email": "a@example.com"})
    throttle = info.value
    assert throttle.status == 429 and throttle.retry_after and throttle.retry_after >= 1
    assert "throttled" in throttle.codes
    paused = limiter.paused_until("profile-import")
    assert paused is not None and paused > limiter.server_time()
    before = received(control, "POST /api/profile-import")
    with pytest.raises(RateLimitedLocally) as local:
        worker_b.import_profile({"email": "b@example.com"})
    assert 0 < local.value.delay <= throttle.retry_after
    assert received(control, "POST /api/profile-import") == before  # never reached Klaviyo
    assert (
        worker_b.create_event(
            {"metric": "M", "profile": {"email": "b@example.com"}, "properties": {}, "unique_id": "u"}
        ).status
        == 202
    )  # other endpoints are not paused


def test_long_throttle_parks_the_endpoint(
    control: httpx.Client, make_client: ClientFactory, limiter: FleetRateLimiter
) -> None:
    set_faults(control, long_throttle_endpoint="POST /api/events", long_throttle_seconds=67608)
    client = make_client(park_after=900)
    event = {"metric": "M", "profile": {"email": "a@example.com"}, "properties": {}, "unique_id": "u"}
    with pytest.raises(EndpointParkedError) as info:
        client.create_event(event)
    assert info.value.status == 429
    assert info.value.until == pytest.approx(limiter.server_time() + 67608, abs=5)
    park = limiter.parked("events")
    assert park is not None and park.until == info.value.until
    before = received(control, "POST /api/events")
    with pytest.raises(EndpointParkedError):
        make_client().create_event(event)
    assert received(control, "POST /api/events") == before
    limiter.unpark("events")
    set_faults(control, clear=True)
    limiter.redis.delete("test:rl:pause:events")
    assert client.create_event(event).status == 202


def test_server_errors_are_transient(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client()
    for status in (500, 503):
        set_faults(control, clear=True, error_rates={str(status): 1.0})
        with pytest.raises(TransientError) as info:
            client.import_profile({"email": "a@example.com"})
        assert info.value.status == status and not isinstance(info.value, ThrottledError)


def test_timeouts_and_dropped_connections_are_transient(
    control: httpx.Client, make_client: ClientFactory
) -> None:
    set_faults(control, latency_ms=2000, endpoints=["POST /api/profile-import"])
    with pytest.raises(TransientError, match="timeout") as info:
        make_client(timeout=0.3).import_profile({"email": "a@example.com"})
    assert info.value.status is None
    set_faults(control, clear=True, drop_rate=1.0)
    with pytest.raises(TransientError, match="connection error"):
        make_client().import_profile({"email": "a@example.com"})


def test_wrong_key_is_permanent_and_never_shown(control: httpx.Client, make_client: ClientFactory) -> None:
    client = make_client(api_key="pk_wrong_secret_key")
    with pytest.raises(PermanentError) as info:
        client.import_profile({"email": "a@example.com"})
    assert info.value.status == 401
    assert "pk_wrong_secret_key" not in str(info.value) + repr(client) + str(info.value.to_dict())


def test_observe_keeps_what_klaviyo_says_is_left(
    control: httpx.Client, make_client: ClientFactory, limiter: FleetRateLimiter
) -> None:
    set_faults(control, other_integration_share=0.5)
    client = make_client()
    client.import_profile({"email": "a@example.com"})
    window = limiter.usage("profile-import")["klaviyo_window"]
    assert window["remaining"] == 374  # 750 - 375 used by someone else - ours: the fleet's bound until it ends
    assert 0 < window["ends_in"] <= 60


def test_short_waits_inline_long_waits_raise(
    control: httpx.Client, make_client: ClientFactory, limiter_factory: Callable[..., FleetRateLimiter]
) -> None:
    tight = limiter_factory(tiers={"profile-import": Tier("tight", 2, 1000)})  # fleet: 1 per second
    patient = make_client(limiter=tight, max_inline_wait=1.5)
    hasty = make_client(limiter=tight, max_inline_wait=0)
    before = received(control, "POST /api/profile-import")
    patient.import_profile({"email": "a@example.com"})
    patient.import_profile({"email": "b@example.com"})  # waits for the next second in the slot
    assert received(control, "POST /api/profile-import") == before + 2
    with pytest.raises(RateLimitedLocally) as info:
        hasty.import_profile({"email": "c@example.com"})
        hasty.import_profile({"email": "d@example.com"})
    assert 0 < info.value.delay <= 1.0
    assert info.value.to_dict()["delay"] == info.value.delay
