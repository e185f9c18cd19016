"""tasks/customers on a real Redis: exceptions, the daily batch, erasure state, the 409 handling."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import redis

from config.mapping import Mapping
from connectors.klaviyo.errors import RateLimitedLocally, TransientError
from flows.customers import (
    CustomerContext,
    daily_batch_due,
    handle_changes_or_retry,
    handle_duplicate_profile,
    process_customer_changes,
    run_daily_batch,
)
from state.delayed import DelayedSchedule
from state.exceptions import ExceptionRegister
from state.fingerprints import FingerprintStore
from sync.operations import Operation
from tests.integration.poller.test_changes import customer
from tests.unit.sync.customers.test_customers import events_for

PREFIX = "cust-test"


def context(client: redis.Redis, sent: list[Operation]) -> CustomerContext:
    mapping = Mapping()
    return CustomerContext(client, PREFIX, mapping, ExceptionRegister(client, PREFIX, mapping.owners),
                           sent.extend, lambda emails: {})


def test_daily_batch_sends_parked_customers_once(redis_client: redis.Redis) -> None:
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    moved = customer(division="KIDS")
    process_customer_changes(events_for(customer(), moved), ctx)
    assert sent == [] and len(ctx.daily) == 1
    assert run_daily_batch(ctx) == 1
    assert [(op.lane, op.payload["properties"]["erp_division"]) for op in sent] == [("batch", "KIDS")]
    assert len(ctx.daily) == 0 and run_daily_batch(ctx) == 1 - 1


def test_daily_batch_runs_once_a_day_after_its_hour(redis_client: redis.Redis) -> None:
    ctx = context(redis_client, [])
    ny = ZoneInfo("America/New_York")
    assert not daily_batch_due(ctx, datetime(2026, 3, 2, 2, 0, tzinfo=ny))
    assert daily_batch_due(ctx, datetime(2026, 3, 2, 3, 5, tzinfo=ny))
    assert not daily_batch_due(ctx, datetime(2026, 3, 2, 4, 0, tzinfo=ny))


def test_invalid_records_and_erasure_state(redis_client: redis.Redis) -> None:
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    process_customer_changes(events_for(None, customer(email="nope")), ctx)
    record = ctx.exceptions.get("invalid_record", "customer:C1")
    assert record is not None and record.owner == "operations" and "email" in record.reason
    FingerprintStore(redis_client, PREFIX).client.hset(f"{PREFIX}:fp:customer", "7", "x")
    process_customer_changes(events_for(customer(), customer(delete_flag="Y")), ctx)
    assert [op.kind for op in sent] == ["profile_deletion"]
    assert not redis_client.hexists(f"{PREFIX}:fp:customer", "7")


def test_duplicate_profile_records_a_mismatch_and_retries_without_phone(redis_client: redis.Redis) -> None:
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    op = Operation(kind="profile_upsert", key="profile:C1:full", lane="fast", record="customer:C1",
                   payload={"external_id": "C1", "email": "a@x.com", "phone_number": "+12125550100"})
    retry = handle_duplicate_profile(op, "01DUP", ctx)
    assert retry is not None and sent == [retry] and "phone_number" not in retry.payload
    mismatch = ctx.exceptions.get("customer_mismatch", "customer:C1")
    assert mismatch is not None and mismatch.details["duplicate_profile_id"] == "01DUP"


def test_changes_whose_consent_guard_cannot_reach_klaviyo_now_come_back_later(redis_client: redis.Redis) -> None:
    # The poller remembers fingerprints once the message is queued: a task that raised here (the guard's
    # profile lookup over the fleet budget, a 429, a 5xx) was acked and the new customer never synced.
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    delayed = DelayedSchedule(redis_client, PREFIX)
    failures: list[Exception] = [RateLimitedLocally("profiles: budget used up", delay=0.0),
                                 TransientError("profiles: HTTP 503", status=503)]

    def busy_then_free(emails: list[str]) -> dict:
        if failures:
            raise failures.pop(0)
        return {}

    ctx.lookup = busy_then_free
    events = [e.model_dump(mode="json")
              for e in events_for(None, customer(email_optin="Y", email_optin_date="2026-03-01 09:00:00"))]
    republished: list[tuple[str, list, str]] = []
    # the profile does not wait for the guard: it is submitted at once; only the first-sync subscribe waits
    assert handle_changes_or_retry(events, ctx, delayed) is False
    assert [op.kind for op in sent] == ["profile_upsert"]
    for attempt in range(2):
        redis_client.zadd(delayed.due_key, {m: 0 for m in redis_client.zrange(delayed.due_key, 0, -1)})
        republished.clear()
        assert delayed.drain(lambda task, args, queue: republished.append((task, args, queue))) == 1
        assert republished == [("bcsync.customers.guard_consent", [events], "fast")]
        done = handle_changes_or_retry(events, ctx, delayed, guard_only=True)
        assert done is (attempt == 1)
    assert [op.kind for op in sent] == ["profile_upsert", "subscribe"] and delayed.pending() == 0
