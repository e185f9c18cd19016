"""One consent job in flight per customer and channel (delivery/consent_confirm.py), step by step through the
real engine: real Redis, the Klaviyo sandbox in-process over HTTP with subscription jobs held back. Scheduled
work (waiting envelopes, read-backs) is taken from the delayed schedule and run by hand, so each step is seen
on its own; the end-to-end tests run the same at concurrency (tests/integration/customers)."""

from __future__ import annotations

import json
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
from sync.operations import Operation

V0, V1, V2 = "2026-03-01T09:00:00Z#000001", "2026-03-01T10:00:00Z#000001", "2026-03-01T10:05:00Z#000001"
KEY = "consent:email:C1"
SUBSCRIBE = "POST /api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "POST /api/profile-subscription-bulk-delete-jobs"
LOOKUP = "GET /api/profiles"
BOUND = 60.0


@pytest.fixture
def klaviyo() -> Iterator[ServerThread]:
    with ServerThread(create_app(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.05))) as server:
        yield server


@pytest.fixture
def rt(redis_client: Any, redis_url: str, klaviyo: ServerThread) -> Runtime:
    settings = Settings(redis_url=redis_url, key_prefix="cj", klaviyo_base_url=klaviyo.url,
                        klaviyo_api_key="pk_test_x", max_attempts=3, consent_confirm_seconds=BOUND,
                        consent_settle_seconds=5, consent_check_seconds=2)
    rt = Runtime(stores=Stores(settings, Mapping(), redis_client), limiter=FleetRateLimiter(redis_client, "cj"))
    upsert = Operation(kind="profile_upsert", key="profile:C1:full", lane="fast", version=V0, record="customer:C1",
                       payload={"external_id": "C1", "email": "ann@example.com"})
    process_envelope(envelope([upsert], "fast"), rt)
    assert rt.stores.profiles.identities(["C1"])["C1"].id
    return rt


def consent(action: str, version: str) -> Operation:
    payload: dict[str, Any] = {"channel": "email", "profile": {"email": "ann@example.com"}, "list_id": None}
    if action == "subscribe":
        payload.update({"custom_source": "ERP", "consented_at": None, "historical_import": False})
    return Operation(kind=action, key=KEY, lane="fast", version=version, profile_of="C1", record="customer:C1",
                     payload=payload)


def submitted(rt: Runtime, op: Operation) -> dict[str, Any]:
    """The envelope of `op` as `delivery.publish` puts it on its lane: its key claimed in the in-flight registry."""
    message = envelope([op], "fast")
    assert rt.stores.inflight.claim(message["id"], [(op.key, op.version)]) == {op.key}
    return message


def faults(klaviyo: ServerThread, **settings: Any) -> None:
    httpx.post(f"{klaviyo.url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()


def received(klaviyo: ServerThread, endpoint: str) -> int:
    stats = httpx.get(f"{klaviyo.url}/_sandbox/stats", timeout=10).json()["endpoints"]
    return int(stats.get(endpoint, {}).get("received", 0))


def email_consent(klaviyo: ServerThread) -> str:
    (profile,) = httpx.get(f"{klaviyo.url}/_sandbox/state", timeout=10).json()["profiles"].values()
    return str(profile["subscriptions"]["email"]["marketing"]["consent"])


def take(rt: Runtime, only: str | None = None) -> list[tuple[str, list[Any], float]]:
    """What the delayed schedule holds (of task `only`, if given), taken out in the order it falls due: (task, args,
    seconds until due)."""
    keys, now = rt.stores.keys, time.time()
    out: list[tuple[str, list[Any], float]] = []
    for entry, due in rt.redis.zrange(keys.delayed_due, 0, -1, withscores=True):
        body = json.loads(rt.redis.hget(keys.delayed_payload, entry))
        if only is not None and body["task"] != only:
            continue
        out.append((body["task"], body["args"], due - now))
        rt.redis.zrem(keys.delayed_due, entry)
        rt.redis.hdel(keys.delayed_payload, entry)
    return out


def waits(rt: Runtime) -> list[tuple[str, list[Any], float]]:
    """What the delayed schedule holds, left there: (task, args, seconds until due)."""
    keys, now = rt.stores.keys, time.time()
    return [(body["task"], body["args"], due - now)
            for entry, due in rt.redis.zrange(keys.delayed_due, 0, -1, withscores=True)
            if (body := json.loads(rt.redis.hget(keys.delayed_payload, entry)))]


def run(rt: Runtime, tasks: list[tuple[str, list[Any], float]], resent: list[Operation] | None = None) -> None:
    for task, args, _ in tasks:
        if task == CHECK_CONSENT_JOBS:
            check_consent_jobs(rt, *args, resubmit=(resent if resent is not None else []).extend)
        else:
            process_envelope(args[0], rt)


def run_until_idle(rt: Runtime, resent: list[Operation] | None = None) -> None:
    """Klaviyo applies every job accepted so far, then the scheduled work runs; until nothing is scheduled."""
    for _ in range(20):
        httpx.post(f"{rt.settings.klaviyo_base_url}/_sandbox/complete-jobs", timeout=10).raise_for_status()
        tasks = take(rt)
        if not tasks:
            return
        run(rt, tasks, resent)
    raise AssertionError("work still scheduled after 20 rounds")


def test_a_later_change_waits_until_the_earlier_job_is_read_back_applied(rt: Runtime, klaviyo: ServerThread) -> None:
    faults(klaviyo, consent_job_delay_seconds=30)  # Klaviyo has accepted the subscribe, not applied it
    process_envelope(submitted(rt, consent("subscribe", V1)), rt)
    process_envelope(submitted(rt, consent("unsubscribe", V2)), rt)
    assert received(klaviyo, SUBSCRIBE) == 1
    assert received(klaviyo, UNSUBSCRIBE) == 0, "the unsubscribe went while the subscribe was still pending"
    tasks = take(rt)
    assert sorted(t for t, _, _ in tasks) == ["bcsync.check_consent_jobs", "bcsync.deliver.unsubscribe"]
    assert all(0 < wait <= 2.0 + 0.1 for _, _, wait in tasks), "read back after 2 s; the change asks again soon"
    run(rt, tasks)
    assert received(klaviyo, UNSUBSCRIBE) == 0 and email_consent(klaviyo) == "NEVER_SUBSCRIBED"
    assert rt.stores.consent_jobs.pending([KEY])[KEY].seen_other, "the read-back saw the job not yet applied"
    assert rt.dead_letters.list() == [], "waiting is not failing"

    faults(klaviyo, consent_job_delay_seconds=0)  # Klaviyo applies the subscribe
    httpx.post(f"{klaviyo.url}/_sandbox/complete-jobs", timeout=10).raise_for_status()
    run(rt, take(rt, only=CHECK_CONSENT_JOBS))
    ((task, _, wait),) = waits(rt)
    assert task == "bcsync.deliver.unsubscribe" and wait <= 0, "the read-back that freed the key wakes the change"
    run_until_idle(rt)
    assert received(klaviyo, UNSUBSCRIBE) == 1 and received(klaviyo, SUBSCRIBE) == 1
    assert email_consent(klaviyo) == "UNSUBSCRIBED", "the last ERP state is the one Klaviyo ends with"
    assert rt.stores.consent_jobs.pending([KEY]) == {} and rt.dead_letters.list() == []
    entry = rt.ledger.get(KEY)
    assert entry is not None and (entry.endpoint, entry.version) == ("unsubscribe", V2)


def test_past_the_bound_the_exception_is_raised_and_the_change_is_sent_again(
    rt: Runtime, klaviyo: ServerThread,
) -> None:
    faults(klaviyo, consent_job_delay_seconds=3600)  # accepted, never applied while the test runs
    process_envelope(submitted(rt, consent("subscribe", V1)), rt)
    take(rt)  # its first read-back ...
    rt.stores.consent_jobs.mark_sent([(KEY, V1)], now=time.time() - BOUND)  # ... comes when it was sent long ago
    resent: list[Operation] = []
    check_consent_jobs(rt, [{"key": KEY, "version": V1}], "fast", resubmit=resent.extend)
    record = rt.exceptions.get("consent_unconfirmed", KEY)
    assert record is not None and record.owner == "operations" and record.details["customer"] == "C1"
    assert record.details["channel"] == "email" and record.details["sent_again"] is True
    assert record.details["klaviyo_consent"] == "NEVER_SUBSCRIBED" and "sent again" in record.reason
    assert rt.stores.consent_jobs.pending([KEY]) == {} and take(rt) == [], "the job is forgotten"
    (again,) = resent
    assert (again.kind, again.version) == ("subscribe", V1 + "~again")
    faults(klaviyo, consent_job_delay_seconds=0)
    process_envelope(submitted(rt, again), rt)
    assert received(klaviyo, SUBSCRIBE) == 2, "the latest state sent again (the ledger holds V1: a new version)"
    run_until_idle(rt, resent)
    assert email_consent(klaviyo) == "SUBSCRIBED" and rt.stores.consent_jobs.pending([KEY]) == {}
    assert len(resent) == 1


def test_past_the_bound_a_newer_change_waiting_for_the_key_is_what_goes(rt: Runtime, klaviyo: ServerThread) -> None:
    faults(klaviyo, consent_job_delay_seconds=3600)
    process_envelope(submitted(rt, consent("subscribe", V1)), rt)
    process_envelope(submitted(rt, consent("unsubscribe", V2)), rt)  # waits for the subscribe
    rt.stores.consent_jobs.mark_sent([(KEY, V1)], now=time.time() - BOUND)
    resent: list[Operation] = []
    run(rt, take(rt), resent)
    record = rt.exceptions.get("consent_unconfirmed", KEY)
    assert record is not None and record.details["sent_again"] is False and "newer change" in record.reason
    assert resent == [], "the subscribe is not sent again: the unsubscribe after it is the latest state"
    faults(klaviyo, consent_job_delay_seconds=0)
    run_until_idle(rt, resent)
    assert received(klaviyo, UNSUBSCRIBE) == 1 and resent == []
    assert email_consent(klaviyo) == "UNSUBSCRIBED"


def test_a_read_back_klaviyo_cannot_answer_now_is_tried_again_and_nothing_is_dropped(
    rt: Runtime, klaviyo: ServerThread,
) -> None:
    faults(klaviyo, consent_job_delay_seconds=3600)
    process_envelope(submitted(rt, consent("subscribe", V1)), rt)
    take(rt)
    faults(klaviyo, consent_job_delay_seconds=3600, error_rates={"503": 1.0}, endpoints=[LOOKUP])
    check_consent_jobs(rt, [{"key": KEY, "version": V1}], "fast", resubmit=[].extend)
    ((task, args, wait),) = take(rt)
    assert task == CHECK_CONSENT_JOBS and args[0] == [{"key": KEY, "version": V1}] and 0 < wait <= 4.1
    faults(klaviyo, consent_job_delay_seconds=3600, throttle_rate=1.0, throttle_retry_after=7, endpoints=[LOOKUP])
    check_consent_jobs(rt, [{"key": KEY, "version": V1}], "fast", resubmit=[].extend)
    ((task, _, wait),) = take(rt)
    assert task == CHECK_CONSENT_JOBS and 6 < wait <= 7.1, "Klaviyo's Retry-After"
    assert KEY in rt.stores.consent_jobs.pending([KEY]) and rt.exceptions.list() == []
    assert rt.dead_letters.list() == []


def test_a_read_back_klaviyo_refuses_gives_the_job_up_at_once_and_blocks_nothing(
    rt: Runtime, klaviyo: ServerThread,
) -> None:
    faults(klaviyo, consent_job_delay_seconds=3600)
    process_envelope(submitted(rt, consent("subscribe", V1)), rt)
    take(rt)
    faults(klaviyo, reject_rules=[{"endpoint": LOOKUP, "status": 403, "code": "permission_denied"}])
    resent: list[Operation] = []
    check_consent_jobs(rt, [{"key": KEY, "version": V1}], "fast", resubmit=resent.extend)
    record = rt.exceptions.get("consent_unconfirmed", KEY)
    assert record is not None and "could not be read back" in record.reason and record.details["sent_again"] is False
    assert resent == [] and take(rt) == [] and rt.stores.consent_jobs.pending([KEY]) == {}
    process_envelope(submitted(rt, consent("unsubscribe", V2)), rt)
    assert received(klaviyo, UNSUBSCRIBE) == 1, "the next change does not wait on reads that cannot come"


def test_a_consent_change_klaviyo_refuses_frees_the_key_for_the_next_one(rt: Runtime, klaviyo: ServerThread) -> None:
    faults(klaviyo, reject_rules=[{"endpoint": SUBSCRIBE, "status": 400, "code": "invalid"}])
    process_envelope(submitted(rt, consent("subscribe", V1)), rt)
    (entry,) = rt.dead_letters.list("fast")
    assert entry.operations[0]["key"] == KEY and rt.stores.consent_jobs.pending([KEY]) == {}
    faults(klaviyo, reject_rules=[])
    process_envelope(submitted(rt, consent("unsubscribe", V2)), rt)
    assert received(klaviyo, UNSUBSCRIBE) == 1, "no job in flight: the next change goes at once"


def test_a_send_that_failed_keeps_its_claim_and_a_newer_change_overtakes_it_on_its_return(
    rt: Runtime, klaviyo: ServerThread,
) -> None:
    faults(klaviyo, error_rates={"503": 1.0}, endpoints=[SUBSCRIBE])
    process_envelope(submitted(rt, consent("subscribe", V1)), rt)
    assert rt.stores.consent_jobs.pending([KEY])[KEY].state == "claimed"
    faults(klaviyo, error_rates={}, endpoints=None)
    process_envelope(submitted(rt, consent("unsubscribe", V2)), rt)  # takes the key in the in-flight registry
    assert received(klaviyo, UNSUBSCRIBE) == 0, "the failed subscribe may still be sent: the change waits"
    run_until_idle(rt)  # the subscribe's retry finds the newer change holds its key: dropped, the claim freed
    assert received(klaviyo, UNSUBSCRIBE) == 1 and rt.ledger.get(KEY).version == V2  # type: ignore[union-attr]
    assert email_consent(klaviyo) == "UNSUBSCRIBED" and rt.dead_letters.list() == []
