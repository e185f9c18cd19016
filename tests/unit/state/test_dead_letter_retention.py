"""Dead-letter retention on a real private Redis: warned before deleted, consent kept until purged, entries of
the older TTL format still read (and their TTL taken away)."""

from __future__ import annotations

import json
import time

import pytest
import redis

from config.mapping import ExceptionOwners
from state.dead_letter_retention import EXPIRED, EXPIRING
from state.dead_letters import Attempt, DeadLetter, DeadLetters
from state.exceptions import ExceptionRegister

DAY = 86400.0
PREFIX = "t"


@pytest.fixture
def register(redis_client: redis.Redis) -> ExceptionRegister:
    return ExceptionRegister(redis_client, PREFIX, ExceptionOwners())


@pytest.fixture
def dlq(redis_client: redis.Redis, register: ExceptionRegister) -> DeadLetters:
    return DeadLetters(redis_client, PREFIX, retention_days=30, warning_days=3, exceptions=register)


def _attempt() -> Attempt:
    return Attempt(at=time.time(), status=400, endpoint="profile-import", error="refused",
                   errors=[{"code": "invalid", "detail": "bad phone"}])


def _profile(dlq: DeadLetters) -> DeadLetter:
    return dlq.add("bcsync.deliver", "fast", "profile_upsert",
                   [{"kind": "profile_upsert", "key": "profile:C1", "record": "customer:C1"}], [_attempt()], "400")


def test_an_entry_about_to_expire_raises_its_exception_and_is_kept_through_the_warning_window(
    dlq: DeadLetters, register: ExceptionRegister, redis_client: redis.Redis
) -> None:
    entry = _profile(dlq)
    assert entry.expires_at == pytest.approx(entry.last_failure + 30 * DAY)
    assert redis_client.ttl(f"{PREFIX}:dlq-entry:{entry.id}") == -1  # no silent Redis expiry
    t0 = entry.last_failure
    assert dlq.sweep(t0 + 26 * DAY).warned == [] and register.list() == []

    report = dlq.sweep(t0 + 28 * DAY)  # within 3 days of the expiry
    assert report.warned == [entry.id] and report.deleted == []
    warning = register.get(EXPIRING, f"dlq:{entry.id}")
    assert warning is not None and warning.owner == "operations" and warning.status == "open"
    assert entry.id in warning.reason and "customer:C1" in warning.reason
    stored = dlq.get(entry.id)
    assert stored is not None and stored.warned_at == t0 + 28 * DAY
    assert stored.expires_at == t0 + 31 * DAY  # a full warning window after the warning

    assert dlq.sweep(t0 + 30.5 * DAY).deleted == []  # past the original expiry, but warned too recently
    assert dlq.sweep(t0 + 30.9 * DAY).warned == []  # warned once, not again
    assert dlq.get(entry.id) is not None and register.get(EXPIRING, f"dlq:{entry.id}").count == 1


def test_an_entry_past_expiry_and_warned_long_enough_is_deleted_with_a_record(
    dlq: DeadLetters, register: ExceptionRegister
) -> None:
    entry = _profile(dlq)
    late = entry.last_failure + 45 * DAY  # the workers were down when it should have been warned
    assert dlq.sweep(late).warned == [entry.id]  # warned, not deleted, though long past the expiry
    assert dlq.sweep(late + 3 * DAY - 60).deleted == []

    assert dlq.sweep(late + 3 * DAY).deleted == [entry.id]
    assert dlq.get(entry.id) is None and dlq.count("fast") == 0
    record = register.get(EXPIRED, f"dlq:{entry.id}")
    assert record is not None and record.owner == "operations" and "deleted" in record.reason
    assert record.details["records"] == ["customer:C1"]
    assert record.details["entry"]["operations"][0]["key"] == "profile:C1"  # what was deleted stays readable
    assert register.get(EXPIRING, f"dlq:{entry.id}").status == "resolved"


def test_consent_never_expires(dlq: DeadLetters, register: ExceptionRegister, redis_client: redis.Redis) -> None:
    unsubscribe = dlq.add("bcsync.deliver", "fast", "unsubscribe",
                          [{"kind": "unsubscribe", "key": "unsub:C1:email", "record": "customer:C1"}], [_attempt()],
                          "Klaviyo answered 403")
    mixed = dlq.add("bcsync.deliver", "fast", "profile_upsert",
                    [{"kind": "profile_upsert", "key": "profile:C2"}, {"kind": "subscribe", "key": "sub:C2:sms"}],
                    [_attempt()], "400")
    page = dlq.add_task("bcsync.handle_customer_changes", "fast", [[_event("customer", "C3")]], [_attempt()],
                        "KeyError")
    for entry in (unsubscribe, mixed, page):
        assert entry.expires_at is None
    report = dlq.sweep(time.time() + 100 * 365 * DAY)
    assert report.warned == report.deleted == []
    assert {e.id for e in dlq.list()} == {unsubscribe.id, mixed.id, page.id}
    assert register.list(status=None) == []
    assert redis_client.ttl(f"{PREFIX}:dlq-entry:{unsubscribe.id}") == -1


def test_an_entry_of_the_older_ttl_format_is_listed_and_given_an_expiry(
    dlq: DeadLetters, redis_client: redis.Redis
) -> None:
    now = time.time()
    old = {"id": "0123456789ab", "task": "bcsync.deliver", "lane": "batch", "kind": "event",
           "operations": [{"kind": "event", "key": "event:Placed Order:SO1", "record": "order:SO1"}],
           "attempts": [{"at": now - 60, "status": 503, "endpoint": "events", "error": "HTTP 503", "errors": []}],
           "first_failure": now - 60, "last_failure": now, "reason": "failed 8 times"}
    old_unsub = dict(old, id="ba9876543210", kind="unsubscribe", operations=[{"kind": "unsubscribe", "key": "u:C1"}])
    for entry in (old, old_unsub):  # as the older code wrote them: JSON with a Redis TTL, and the lane's index
        redis_client.set(f"{PREFIX}:dlq-entry:{entry['id']}", json.dumps(entry), ex=30 * 86400)
        redis_client.zadd(f"{PREFIX}:dlq:batch", {entry["id"]: now})

    listed = {e.id: e for e in dlq.list("batch")}
    assert set(listed) == {"0123456789ab", "ba9876543210"}
    assert listed["0123456789ab"].legacy and listed["0123456789ab"].records == ["order:SO1"]

    assert sorted(dlq.sweep(now).migrated) == ["0123456789ab", "ba9876543210"]
    for entry_id in listed:
        assert redis_client.ttl(f"{PREFIX}:dlq-entry:{entry_id}") == -1  # the silent TTL is gone
    migrated = dlq.get("0123456789ab")
    assert migrated is not None and not migrated.legacy and migrated.expires_at == pytest.approx(now + 30 * DAY)
    kept = dlq.get("ba9876543210")
    assert kept is not None and not kept.legacy and kept.expires_at is None


def test_a_task_dead_letter_keeps_its_args_and_names_its_records(dlq: DeadLetters) -> None:
    event = _event("order", "SO7")
    attempt = Attempt(at=time.time(), error="KeyError: 'ord_status'",
                      traceback='Traceback (most recent call last):\n  File "flows/orders.py", line 1\nKeyError')
    entry = dlq.add_task("bcsync.handle_change", "default", [event], [attempt], "unexpected KeyError")
    stored = dlq.get(entry.id)
    assert stored is not None and stored.args == [event] and stored.operations == []
    assert stored.is_task and stored.records == ["order:SO7"] and stored.kind == "task"
    assert stored.attempts[0].traceback is not None and "KeyError" in stored.attempts[0].traceback
    assert stored.expires_at is not None  # an order change is no consent: it expires (after a warning)
    flush = dlq.add_task("bcsync.flush_stock", "fast", [], [attempt], "boom")
    assert flush.args == [] and flush.is_task and flush.records == []


def test_removing_an_entry_resolves_its_expiry_warning(dlq: DeadLetters, register: ExceptionRegister) -> None:
    entry = _profile(dlq)
    dlq.sweep(entry.last_failure + 29 * DAY)
    warned = dlq.get(entry.id)
    assert warned is not None
    dlq.remove(warned)
    assert register.get(EXPIRING, f"dlq:{entry.id}").status == "resolved"
    assert dlq.sweep(entry.last_failure + 60 * DAY).deleted == []  # gone: nothing recreated, nothing recorded


def test_sweep_needs_the_register_and_runs_once_per_interval(redis_client: redis.Redis, dlq: DeadLetters) -> None:
    with pytest.raises(RuntimeError):
        DeadLetters(redis_client, PREFIX).sweep()
    assert dlq.sweep_if_due(interval_seconds=60) is not None
    assert dlq.sweep_if_due(interval_seconds=60) is None  # another sweep ran within the interval


def _event(resource: str, key: str) -> dict[str, object]:
    return {"resource": resource, "key": key, "kind": "fields_changed", "changed_fields": ["email_optin"],
            "lane": "fast", "record": {"kind": "subscribe"}, "fingerprint": "f", "last_mod": "2026-01-01 00:00:00",
            "version": "2026-01-01T00:00:00Z#0"}
