"""The fleet's Redis state stores, on a real private Redis."""

from __future__ import annotations

import time

from config.mapping import ExceptionOwners
from state.dead_letters import Attempt, DeadLetters
from state.delayed import RECLAIM_AFTER, DelayedSchedule
from state.exceptions import ExceptionRegister
from state.keys import RedisKeys
from state.lane_stats import KEEP, LaneStats
from state.ledger import Ledger
from sync.ledger import LedgerEntry


def test_exception_register_deduplicates_by_type_and_record_and_routes_owner(redis_client):
    reg = ExceptionRegister(redis_client, "t", ExceptionOwners())
    reg.record("invalid_record", "customer:C1", "email missing")
    rec = reg.record("invalid_record", "customer:C1", "email invalid: 'x@'")
    reg.record("consent_conflict", "customer:C2", "unsubscribed in Klaviyo after ERP consent")
    assert rec.count == 2 and rec.reason == "email invalid: 'x@'" and rec.owner == "operations"
    assert [r.record_key for r in reg.list(owner="ecommerce")] == ["customer:C2"]
    assert [r.record_key for r in reg.list(type="invalid_record")] == ["customer:C1"]
    assert reg.resolve("invalid_record", "customer:C1")
    assert reg.list(type="invalid_record") == []
    assert len(reg.list(status=None)) == 2


def test_exception_register_entries_expire_with_retention(redis_client):
    reg = ExceptionRegister(redis_client, "t", ExceptionOwners(), ttl_days=1)
    reg.record("invalid_record", "customer:C1", "bad")
    ttl = redis_client.ttl("t:exception:invalid_record|customer:C1")
    assert 0 < ttl <= 86400
    redis_client.delete("t:exception:invalid_record|customer:C1")
    assert reg.list() == [] and redis_client.zcard("t:exceptions") == 0


def test_ledger_records_and_indexes_by_record(redis_client):
    ledger = Ledger(redis_client, "t", ttl_days=2)
    ledger.record([
        LedgerEntry(key="event:Placed Order:SO1", delivered_at=1.0, status=202, endpoint="events", record="order:SO1"),
        LedgerEntry(key="event:Fulfilled Order:SO1:fulfilled:P1", delivered_at=2.0, status=202, endpoint="events",
                    record="order:SO1"),
    ])
    assert set(ledger.delivered(["event:Placed Order:SO1", "nope"])) == {"event:Placed Order:SO1"}
    assert [e.key for e in ledger.for_record("order:SO1")] == [
        "event:Placed Order:SO1", "event:Fulfilled Order:SO1:fulfilled:P1"]
    assert 0 < redis_client.ttl("t:ledger:event:Placed Order:SO1") <= 2 * 86400
    assert ledger.forget_record("order:SO1") == 2 and ledger.for_record("order:SO1") == []


def test_dead_letters_keep_attempts_and_filter_by_code(redis_client):
    dlq = DeadLetters(redis_client, "t")
    attempt = Attempt(at=time.time(), status=400, endpoint="profile-import", error="refused",
                      errors=[{"code": "invalid", "detail": "bad phone"}])
    entry = dlq.add("bcsync.deliver", "fast", "profile_upsert", [{"key": "profile:C1", "record": "customer:C1"}],
                    [attempt], "Klaviyo refused the request (400)")
    assert entry.code == "invalid" and entry.records == ["customer:C1"]
    assert [e.id for e in dlq.list("fast", "invalid")] == [entry.id]
    assert dlq.list("fast", "throttled") == [] and dlq.list("batch") == []
    dlq.remove(entry)
    assert dlq.get(entry.id) is None and dlq.count("fast") == 0


def test_delayed_schedule_publishes_only_due_entries_once(redis_client):
    sched = DelayedSchedule(redis_client, "t")
    sched.add("bcsync.deliver", [{"id": "a"}], "fast", due=time.time() - 1)
    sched.add("bcsync.deliver", [{"id": "b"}], "batch", due=time.time() + 60)
    published: list[tuple[str, list, str]] = []
    assert sched.drain(lambda t, a, q: published.append((t, a, q))) == 1
    assert published == [("bcsync.deliver", [{"id": "a"}], "fast")]
    assert sched.drain(lambda t, a, q: published.append((t, a, q))) == 0
    assert sched.pending() == 1


def test_delayed_schedule_reclaims_entries_of_a_drainer_that_died(redis_client):
    sched = DelayedSchedule(redis_client, "t")
    sched.add("bcsync.deliver", [{"id": "a"}], "fast", due=time.time() - 1)

    def crash(*_):
        raise RuntimeError("drainer died mid-publish")

    try:
        sched.drain(crash)
    except RuntimeError:
        pass
    assert sched.pending() == 1  # claimed, not lost
    # pretend the claim is old: it comes back and is published
    claimed = redis_client.zrange(sched.inflight_key, 0, 0)[0]
    redis_client.zadd(sched.inflight_key, {claimed: time.time() - RECLAIM_AFTER - 1})
    published: list = []
    assert sched.drain(lambda t, a, q: published.append(a)) == 1 and published == [[{"id": "a"}]]
    assert sched.pending() == 0


def test_lane_stats_count_deliveries_and_keep_recent_latencies(redis_client):
    stats = LaneStats(redis_client, "t")
    stats.delivered("fast", 3, time.time() - 0.2)
    stats.delivered("batch", 1000, time.time() - 30)
    stats.delivered("batch", 0, time.time())  # nothing delivered: nothing counted
    summary = stats.summary(("fast", "default", "batch"))
    assert summary["fast"]["delivered"] == 3 and 0.15 < summary["fast"]["p50_seconds"] < 5
    assert summary["batch"]["delivered"] == 1000 and summary["batch"]["p50_seconds"] >= 30
    assert summary["default"] == {"delivered": 0, "p50_seconds": None, "p95_seconds": None}
    for _ in range(KEEP + 50):
        stats.delivered("fast", 1, time.time())
    assert redis_client.llen("t:stats:latency:fast") == KEEP


def test_delayed_entry_rescheduled_while_being_published_is_not_lost(redis_client):
    # The envelope keeps its id when it is rescheduled: a worker that takes the published message and
    # reschedules it (e.g. the fleet budget is still used up) before the drainer cleans up must not have
    # its new entry's payload deleted by that cleanup, or the due id has no body and is dropped.
    schedule = DelayedSchedule(redis_client, "t")
    schedule.add("bcsync.deliver", [{"id": "env1", "n": 1}], "fast", time.time() - 1, entry_id="env1")

    def publish_and_reschedule_at_once(task: str, args: list, queue: str) -> None:
        schedule.add(task, args, queue, time.time() - 1, entry_id="env1")  # same id, same body

    assert schedule.drain(publish_and_reschedule_at_once) == 1
    seen: list[list] = []
    assert schedule.drain(lambda task, args, queue: seen.append(args)) == 1
    assert seen == [[{"id": "env1", "n": 1}]]
    assert schedule.pending() == 0


def test_lane_latency_percentiles_are_ordered_for_any_sample(redis_client):
    stats = LaneStats(redis_client, "p")
    now = time.time()
    for age in (13.8, 12.4, 1.0, 14.0):
        stats.delivered("fast", 1, now - age)
    summary = stats.summary(("fast",))["fast"]
    assert summary["p50_seconds"] <= summary["p95_seconds"]
    assert summary["p95_seconds"] >= 13.9  # the slowest of four is the 95th percentile


def test_the_ledger_keeps_the_newest_version_of_a_key(redis_client):
    ledger = Ledger(redis_client, "v")
    newer = LedgerEntry(key="consent:email:C1", delivered_at=2.0, status=202, endpoint="unsubscribe",
                        version="2026-11-26T10:05:00Z#000001")
    older = LedgerEntry(key="consent:email:C1", delivered_at=3.0, status=202, endpoint="subscribe",
                        version="2026-11-26T10:00:00Z#000001")
    ledger.record([newer])
    ledger.record([older])  # a slow write of an older version arrives last
    assert ledger.get("consent:email:C1").endpoint == "unsubscribe"
    unversioned = LedgerEntry(key="event:Placed Order:SO1", delivered_at=1.0, status=202, endpoint="events")
    ledger.record([unversioned, unversioned.model_copy(update={"status": 200})])
    assert ledger.get("event:Placed Order:SO1").status == 200


def test_delayed_entries_are_brought_forward_never_back_and_unknown_ids_stay_out(redis_client):
    delayed = DelayedSchedule(redis_client, "t")
    delayed.add("task", [], "fast", due=time.time() + 60, entry_id="waiting")
    assert delayed.hasten(["waiting", "gone"], due=time.time()) == 1
    assert delayed.next_due() <= time.time() and redis_client.zcard(delayed.due_key) == 1
    assert delayed.hasten(["waiting"], due=time.time() + 600) == 0, "never later than it was"


def test_lane_stats_keep_as_many_latencies_as_configured(redis_client):
    # BCSYNC_LATENCY_SAMPLES: status's p50/p99 over that many of the latest deliveries (bench.reconcile keeps all)
    few, many = LaneStats(redis_client, "keep3", keep=3), LaneStats(redis_client, "keep500", keep=500)
    for n in range(250):
        few.delivered("fast", 1, time.time() - n / 1000)
        many.delivered("fast", 1, time.time() - n / 1000)
    assert redis_client.llen(RedisKeys("keep3").latencies("fast")) == 3
    assert redis_client.llen(RedisKeys("keep500").latencies("fast")) == 250


def test_lane_stats_count_a_delivery_and_its_outcome_in_one_command_of_the_callers_pipeline(redis_client):
    stats = LaneStats(redis_client, "onecmd")
    pipe = redis_client.pipeline(transaction=False)
    stats.delivered("default", 2, time.time() - 0.3, client=pipe, kind="event")
    stats.delivered("default", 1, None, client=pipe, kind="event")  # no creation time: no latency
    assert len(pipe) == 2
    pipe.execute()
    assert stats.outcomes() == {("default", "event", "delivered"): 3}
    assert stats.summary(("default",))["default"]["delivered"] == 3
    buckets, total = stats.histogram("default")
    assert dict(buckets)["0.25"] == 0 and dict(buckets)["0.5"] == 1 and dict(buckets)["+Inf"] == 1
    assert 0.3 <= total < 5
    stats.delivered("default", 1, time.time())  # without a kind: no outcome counted
    assert stats.outcomes() == {("default", "event", "delivered"): 3}
    assert stats.summary(("default",))["default"]["delivered"] == 4
