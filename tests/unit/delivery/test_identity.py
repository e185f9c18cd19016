"""The identity rule of delivery (delivery/identity.py), one envelope at a time through the real engine: real
Redis, the Klaviyo sandbox in-process over HTTP. Waiting work is taken from the delayed schedule and run again by
hand, so each step of the rule is seen on its own (the end-to-end tests run it at concurrency)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from config.mapping import Mapping
from config.settings import Settings
from config.task_names import CHECK_CONSENT_JOBS
from connectors.klaviyo.limiter import FleetRateLimiter
from delivery.consent_confirm import check_consent_jobs
from delivery.engine import process_envelope
from delivery.envelope import envelope
from delivery.runtime import Runtime
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.factory import Stores
from state.profiles import Identity
from sync.operations import Operation

V1, V2, V3 = "2026-03-01T10:00:00Z#000001", "2026-03-02T10:00:00Z#000001", "2026-03-03T10:00:00Z#000001"


@pytest.fixture
def klaviyo() -> Iterator[ServerThread]:
    with ServerThread(create_app(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.05))) as server:
        yield server


@pytest.fixture
def rt(redis_client: Any, redis_url: str, klaviyo: ServerThread) -> Runtime:
    settings = Settings(redis_url=redis_url, key_prefix="ident", klaviyo_base_url=klaviyo.url,
                        klaviyo_api_key="pk_test_x", max_attempts=3, profile_wait_seconds=60)
    return Runtime(stores=Stores(settings, Mapping(), redis_client), limiter=FleetRateLimiter(redis_client, "ident"))


def upsert(code: str, version: str, scope: str = "full", **attrs: Any) -> Operation:
    return Operation(kind="profile_upsert", key=f"profile:{code}:{scope}", lane="fast", version=version,
                     payload={"external_id": code, **attrs}, record=f"customer:{code}")


def subscribe(code: str, email: str) -> Operation:
    return Operation(kind="subscribe", key=f"consent:email:{code}", lane="fast", version=V1, profile_of=code,
                     record=f"customer:{code}", payload={"channel": "email", "profile": {"email": email},
                                                        "list_id": None, "custom_source": "ERP",
                                                        "consented_at": None, "historical_import": False})


def event(code: str, order: str) -> Operation:
    return Operation(kind="event", key=f"event:Placed Order:{order}", lane="fast", profile_of=code,
                     record=f"order:{order}", payload={"metric": "Placed Order", "profile": {"external_id": code},
                                                       "properties": {}, "unique_id": order, "value": 10.0})


def profiles(klaviyo: ServerThread) -> list[dict[str, Any]]:
    state = httpx.get(f"{klaviyo.url}/_sandbox/state", timeout=10).json()
    return list(state["profiles"].values())


def run_waiting(rt: Runtime) -> None:
    """Run every task the delayed schedule holds (envelopes, consent read-backs), now, as the drainer and a
    worker would when due."""
    rt.redis.zadd(rt.stores.keys.delayed_due, {m: 0 for m in rt.redis.zrange(rt.stores.keys.delayed_due, 0, -1)})
    tasks: list[tuple[str, list[Any]]] = []
    rt.delayed.drain(lambda task, args, queue, **_: tasks.append((task, args)))
    for task, args in tasks:
        if task == CHECK_CONSENT_JOBS:
            check_consent_jobs(rt, *args)
        else:
            process_envelope(args[0], rt)


def test_a_subscribe_waits_for_the_profile_then_names_it_by_id(rt: Runtime, klaviyo: ServerThread) -> None:
    process_envelope(envelope([subscribe("C1", "ann@example.com")], "fast"), rt)
    assert profiles(klaviyo) == [] and rt.delayed.pending() == 1  # nothing sent: it waits for C1's profile
    process_envelope(envelope([upsert("C1", V1, email="ann@example.com", first_name="Ann")], "fast"), rt)
    (made,) = profiles(klaviyo)
    assert rt.stores.profiles.identities(["C1"])["C1"] == Identity(made["id"], "ann@example.com", None)
    run_waiting(rt)
    httpx.post(f"{klaviyo.url}/_sandbox/complete-jobs", timeout=10).raise_for_status()
    (profile,) = profiles(klaviyo)
    assert profile["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"
    run_waiting(rt)  # the subscribe's read-back: seen applied
    assert rt.delayed.pending() == 0 and rt.dead_letters.list() == []


def test_an_event_never_makes_a_profile_and_after_state_loss_the_id_is_looked_up(
    rt: Runtime, klaviyo: ServerThread,
) -> None:
    process_envelope(envelope([upsert("C2", V1, email="bo@example.com")], "fast"), rt)
    rt.redis.delete(rt.stores.keys.profile("C2"))  # the fleet's state lost; Klaviyo still has the profile
    process_envelope(envelope([event("C2", "SO1")], "fast"), rt)
    (profile,) = profiles(klaviyo)
    assert rt.stores.profiles.identities(["C2"])["C2"].id == profile["id"]  # rebuilt by external_id
    state = httpx.get(f"{klaviyo.url}/_sandbox/state", timeout=10).json()
    (placed,) = state["events"]["Placed Order"]
    assert placed["profile_id"] == profile["id"]


def test_past_the_wait_an_exception_names_the_customer_and_the_work_is_dead_lettered(rt: Runtime) -> None:
    message = envelope([event("C9", "SO9")], "fast")
    message["waiting_since"] = time.time() - 61  # waited longer than profile_wait_seconds
    process_envelope(message, rt)
    (entry,) = rt.dead_letters.list("fast")
    assert "C9" in entry.reason and entry.operations[0]["key"] == "event:Placed Order:SO9"
    problem = rt.exceptions.get("profile_missing", "customer:C9")
    assert problem is not None and "event:Placed Order:SO9" in problem.details["waiting"]


def test_an_older_write_never_overwrites_a_newer_field(rt: Runtime, klaviyo: ServerThread) -> None:
    process_envelope(envelope([upsert("C3", V3, "immediate", email="new@example.com", last_name="Godwin")], "fast"),
                     rt)
    # the daily batch's older record: its division goes, its email and last name do not
    process_envelope(envelope([upsert("C3", V2, email="old@example.com", last_name="Shelley",
                                      properties={"erp_division": "KIDS"})], "fast"), rt)
    (profile,) = profiles(klaviyo)
    assert (profile["email"], profile["last_name"]) == ("new@example.com", "Godwin")
    assert profile["properties"]["erp_division"] == "KIDS"
    # nothing newer left in it at all: recorded as superseded, not sent
    process_envelope(envelope([upsert("C3", V1, "immediate", email="older@example.com")], "fast"), rt)
    entry = rt.ledger.get("profile:C3:immediate")
    assert entry is not None and entry.version == V3  # the superseded V1 never replaced V3's entry
    assert profiles(klaviyo)[0]["email"] == "new@example.com"


def test_a_write_waits_while_another_envelope_holds_the_customer(rt: Runtime, klaviyo: ServerThread) -> None:
    assert rt.stores.profiles.acquire(["C4"], "someone-else", 30) == {"C4"}
    process_envelope(envelope([upsert("C4", V1, email="cy@example.com")], "fast"), rt)
    assert profiles(klaviyo) == [] and rt.delayed.pending() == 1
    rt.stores.profiles.release(["C4"], "someone-else")
    run_waiting(rt)
    assert [p["email"] for p in profiles(klaviyo)] == ["cy@example.com"]


def test_an_unsubscribe_never_waits_and_goes_by_the_email_klaviyo_holds(rt: Runtime, klaviyo: ServerThread) -> None:
    process_envelope(envelope([upsert("C5", V1, email="held@example.com")], "fast"), rt)
    # the ERP's email changed, but that upsert has not landed: Klaviyo still holds the old one
    unsubscribe = Operation(kind="unsubscribe", key="consent:email:C5", lane="fast", version=V2, profile_of="C5",
                            record="customer:C5",
                            payload={"channel": "email", "profile": {"email": "changed@example.com"}, "list_id": None})
    process_envelope(envelope([unsubscribe], "fast"), rt)
    httpx.post(f"{klaviyo.url}/_sandbox/complete-jobs", timeout=10).raise_for_status()
    (profile,) = profiles(klaviyo)  # no profile made for the address Klaviyo does not hold
    assert profile["subscriptions"]["email"]["marketing"]["consent"] == "UNSUBSCRIBED"


def test_an_id_klaviyo_no_longer_knows_is_forgotten_and_looked_up_again(rt: Runtime, klaviyo: ServerThread) -> None:
    process_envelope(envelope([upsert("C6", V1, email="di@example.com")], "fast"), rt)
    real = rt.stores.profiles.identities(["C6"])["C6"].id
    rt.stores.profiles.remember({"C6": Identity(id="01GONEGONEGONEGONEGONEGONE")})  # merged away in Klaviyo
    process_envelope(envelope([event("C6", "SO6")], "fast"), rt)
    assert rt.stores.profiles.identities(["C6"])["C6"].id is None and rt.delayed.pending() == 1
    run_waiting(rt)
    assert rt.stores.profiles.identities(["C6"])["C6"].id == real
    # each attempt has its one outcome in the metrics: the first found the profile gone, the second delivered
    outcomes = {outcome: n for (lane, kind, outcome), n in rt.stores.lane_stats.outcomes().items() if kind == "event"}
    assert outcomes == {"profile_gone": 1, "delivered": 1}
    state = httpx.get(f"{klaviyo.url}/_sandbox/state", timeout=10).json()
    assert [e["profile_id"] for e in state["events"]["Placed Order"]] == [real]


def test_past_the_wait_work_whose_profile_upsert_is_on_its_way_waits_on(rt: Runtime) -> None:
    # a first load's backlog: C8's upsert is queued behind thousands of others, longer than the wait
    rt.stores.inflight.claim("the-upsert-envelope", [("profile:C8:full", V1)])
    message = envelope([event("C8", "SO8")], "fast")
    message["waiting_since"] = time.time() - 61
    process_envelope(message, rt)
    assert rt.dead_letters.list() == [] and rt.delayed.pending() == 1
    assert rt.exceptions.get("profile_missing", "customer:C8") is None


def sms_opt_out(code: str) -> Operation:
    return Operation(kind="unsubscribe", key=f"consent:sms:{code}", lane="fast", version=V2, profile_of=code,
                     record=f"customer:{code}", payload={"channel": "sms", "profile": {}, "list_id": None})


def test_an_sms_opt_out_without_a_phone_goes_by_the_phone_klaviyo_holds(rt: Runtime, klaviyo: ServerThread) -> None:
    process_envelope(envelope([upsert("C7", V1, email="ed@example.com", phone_number="+12125550123")], "fast"), rt)
    payload = {"channel": "sms", "profile": {"phone_number": "+12125550123"}, "list_id": None,
               "custom_source": "ERP", "consented_at": None, "historical_import": False}
    subscribe_sms = Operation(kind="subscribe", key="consent:sms:C7", lane="fast", version=V1, profile_of="C7",
                              record="customer:C7", payload=payload)
    process_envelope(envelope([subscribe_sms], "fast"), rt)
    httpx.post(f"{klaviyo.url}/_sandbox/complete-jobs", timeout=10).raise_for_status()
    run_waiting(rt)  # the subscribe seen applied: the next change of the customer's SMS consent may go
    process_envelope(envelope([sms_opt_out("C7")], "fast"), rt)  # the ERP blanked the phone with the opt-out
    httpx.post(f"{klaviyo.url}/_sandbox/complete-jobs", timeout=10).raise_for_status()
    (profile,) = profiles(klaviyo)
    assert profile["subscriptions"]["sms"]["marketing"]["consent"] == "UNSUBSCRIBED"
    assert rt.dead_letters.list() == []


def test_an_sms_opt_out_with_no_phone_anywhere_has_nothing_to_undo(rt: Runtime, klaviyo: ServerThread) -> None:
    process_envelope(envelope([upsert("C10", V1, email="fi@example.com")], "fast"), rt)
    process_envelope(envelope([sms_opt_out("C10")], "fast"), rt)
    assert rt.dead_letters.list() == [] and rt.delayed.pending() == 0
    entry = rt.ledger.get("consent:sms:C10")
    assert entry is not None and entry.endpoint == "nothing-to-send" and entry.version == V2
