"""Bulk delivery on the batch lane, end to end: event bulk jobs Klaviyo refuses because of some rows, bulk
profile import with its job polled and per-row import errors read back, and never one unique_id twice for a
profile and metric in a request. Real Redis, the Klaviyo sandbox over HTTP, real `bcsync worker` processes
where a worker matters; `process_envelope` in-process over the test Redis where it adds nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import delivery.publish
from config.celery import make_app
from config.mapping import Mapping
from config.settings import Settings
from delivery.engine import process_envelope
from delivery.envelope import envelope
from delivery.runtime import Runtime
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.dead_letters import DeadLetters
from state.delayed import DelayedSchedule
from state.factory import Stores
from state.ledger import Ledger
from sync.operations import Operation
from tests.integration.delivery.test_fleet_delivery import Fleet, fleet_factory  # noqa: F401  (the fleet fixture)
from tests.support.fleet import wait_for
from tests.unit.delivery.test_process_envelope import make_runtime

pytestmark = pytest.mark.integration

METRIC = "Placed Order"
EVENT_BULK = "POST /api/event-bulk-create-jobs"
JOB_STATUS = "GET /api/profile-bulk-import-jobs/{id}"
JOB_ERRORS = "GET /api/profile-bulk-import-jobs/{id}/import-errors"


def event_op(n: int, customer: str, metric: str = METRIC, time: str = "2026-01-02T10:00:00Z") -> Operation:
    return Operation(
        kind="event", key=f"event:{metric[:20]}:SO{n}", lane="batch", record=f"order:SO{n}",
        payload={"metric": metric, "profile": {"external_id": customer, "email": f"{customer.lower()}@example.com"},
                 "properties": {"order": f"SO{n}"}, "time": time, "value": 10.0 + n, "unique_id": f"SO{n}"},
    )


def submit_like_producers(monkeypatch: pytest.MonkeyPatch, fleet: Fleet, ops: list[Operation]) -> int:
    """`delivery.publish.submit` itself, with its Celery app pointed at the fleet's Redis."""
    settings = Settings.model_validate(
        {k[len("BCSYNC_"):].lower(): v for k, v in fleet.env.items() if k.startswith("BCSYNC_")}
    )
    monkeypatch.setattr(delivery.publish, "app", make_app(settings))
    # and its stores (the in-flight registry) on the fleet's Redis, never a machine-wide one
    fleet_stores = Stores(settings, Mapping(), fleet.redis)
    monkeypatch.setattr(delivery.publish, "stores", lambda: fleet_stores)
    return delivery.publish.submit(ops)


def sandbox_events(fleet_or_url: Fleet | str) -> dict[str, list[dict]]:
    url = fleet_or_url if isinstance(fleet_or_url, str) else fleet_or_url.sandbox.url
    return httpx.get(f"{url}/_sandbox/state", timeout=30).json()["events"]


def test_rows_klaviyo_refuses_in_a_bulk_event_request_are_dead_lettered_and_the_rest_delivered(
    fleet_factory, monkeypatch  # noqa: F811
):
    fleet = fleet_factory()
    fleet.worker("batch")
    # four customers, three orders each; two rows Klaviyo refuses, each inside a group of good rows
    ops = [event_op(n, f"C{n % 4}") for n in range(12)]
    ops[5] = event_op(5, "C1", metric="M" * 128)  # Klaviyo: metric names shorter than 128 characters
    ops[6] = event_op(6, "C2", time="1999-12-31T23:00:00Z")  # Klaviyo: event time after 2000-01-01
    assert submit_like_producers(monkeypatch, fleet, ops) == 1  # one bulk envelope on the batch lane

    good = {f"SO{n}" for n in range(12)} - {"SO5", "SO6"}
    wait_for(lambda: {e["unique_id"] for e in sandbox_events(fleet).get(METRIC, [])} == good, 60,
             message="the ten good events in the sandbox")
    wait_for(lambda: fleet.dead_letters() == 2, 30, message="two dead letters")
    dlq = DeadLetters(fleet.redis, fleet.prefix)
    entries = {e.operations[0]["key"]: e for e in dlq.list("batch")}
    assert set(entries) == {ops[5].key, ops[6].key}  # exactly those rows, one entry each
    metric_error, = entries[ops[5].key].attempts[-1].errors
    time_error, = entries[ops[6].key].attempts[-1].errors  # each row carries its own error only
    assert entries[ops[5].key].attempts[-1].status == 400 and entries[ops[5].key].code == "invalid"
    assert "shorter than 128" in metric_error["detail"]
    assert metric_error["pointer"].endswith("/attributes/metric/data/attributes/name")
    assert "2000-01-01" in time_error["detail"] and time_error["pointer"].endswith("/attributes/time")
    ledger = Ledger(fleet.redis, fleet.prefix)
    delivered = ledger.delivered([op.key for op in ops])
    assert set(delivered) == {op.key for op in ops} - {ops[5].key, ops[6].key}
    assert {e.endpoint for e in delivered.values()} == {"event-bulk-create-jobs"}
    assert fleet.stats()["duplicates_suppressed"] == 0


def test_bulk_profile_import_polls_the_job_and_dead_letters_rows_with_import_errors(
    fleet_factory, monkeypatch  # noqa: F811
):
    fleet = fleet_factory()
    # two profiles exist already: a row naming both (external_id of one, email of the other) cannot be
    # imported, and neither can a row naming a profile id Klaviyo does not have
    for ext in ("PA", "PB"):
        httpx.post(f"{fleet.sandbox.url}/api/profile-import", timeout=10, headers={
            "Authorization": "Klaviyo-API-Key pk_test_0123456789abcdef", "revision": "2026-10-15",
            "Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"},
            json={"data": {"type": "profile", "attributes": {"external_id": ext,
                                                             "email": f"{ext.lower()}@example.com"}}},
        ).raise_for_status()
    fleet.worker("batch")
    ops = [Operation(kind="profile_upsert", key=f"profile:C{n:03d}", lane="batch", record=f"customer:C{n:03d}",
                     payload={"external_id": f"C{n:03d}", "email": f"c{n}@example.com", "first_name": f"Ann{n}"})
           for n in range(40)]
    ops[7] = Operation(kind="profile_upsert", key="profile:PB", lane="batch", record="customer:PB",
                       payload={"external_id": "PB", "email": "pa@example.com"})
    ops[23] = Operation(kind="profile_upsert", key="profile:C023", lane="batch", record="customer:C023",
                        payload={"id": "01HZZZZZZZZZZZZZZZZZZZZZZZ", "external_id": "C023"})
    assert submit_like_producers(monkeypatch, fleet, ops) == 1  # one bulk import job

    wait_for(lambda: fleet.dead_letters() == 2, 60, message="the two rows with import errors dead-lettered")
    entries = {e.operations[0]["key"]: e for e in DeadLetters(fleet.redis, fleet.prefix).list("batch")}
    assert set(entries) == {"profile:PB", "profile:C023"}
    conflict, = entries["profile:PB"].attempts[-1].errors
    missing, = entries["profile:C023"].attempts[-1].errors
    assert conflict["code"] == "duplicate_profile" and conflict["pointer"] == "/data/attributes/profiles/data/7"
    assert "does not exist" in missing["detail"] and missing["pointer"] == "/data/attributes/profiles/data/23"
    assert all("reported an error for this row" in e.reason for e in entries.values())

    good = [op for i, op in enumerate(ops) if i not in (7, 23)]
    delivered = Ledger(fleet.redis, fleet.prefix).delivered([op.key for op in ops])
    assert set(delivered) == {op.key for op in good}
    assert {e.endpoint for e in delivered.values()} == {"profile-bulk-import-jobs"}
    assert {op.payload["external_id"] for op in good} <= set(fleet.external_ids())
    # the job was polled (its status, then its import errors) through the delayed-retry schedule
    endpoints = fleet.stats()["endpoints"]
    assert endpoints[JOB_STATUS]["received"] >= 1 and endpoints[JOB_ERRORS]["received"] >= 1
    assert DelayedSchedule(fleet.redis, fleet.prefix).pending() == 0


@pytest.fixture
def sandbox_runtime(redis_client, redis_url) -> Iterator[tuple[Runtime, str]]:
    """A Runtime over the test Redis whose Klaviyo client talks to a sandbox without rate limits."""
    server = ServerThread(create_app(KlaviyoSandboxConfig(rate_limits_enabled=False)))
    server.start()
    rt = make_runtime(redis_client, redis_url)
    rt.stores.settings = rt.settings.model_copy(update={"klaviyo_base_url": server.url})
    yield rt, server.url
    for client in rt.clients.values():
        client.close()
    server.stop()


def test_one_unique_id_is_sent_once_per_profile_and_metric_in_a_bulk_request(sandbox_runtime):
    rt, url = sandbox_runtime
    first = event_op(1, "C1")
    again = first.model_copy()  # the same order event computed twice (a poll overlap) in one envelope
    alias = event_op(1, "C1").model_copy(update={"key": "event:Placed Order:SO1:again"})  # same unique_id
    other = event_op(2, "C1")
    process_envelope(envelope([first, again, alias, other], "batch"), rt)

    stored: list[dict] = wait_for(lambda: sandbox_events(url).get(METRIC), 10, message="the events stored")  # type: ignore[assignment]
    assert sorted(e["unique_id"] for e in stored) == ["SO1", "SO2"]
    stats = httpx.get(f"{url}/_sandbox/stats", timeout=10).json()
    assert stats["endpoints"][EVENT_BULK]["statuses"] == {"202": 1}  # one request, accepted
    assert stats["duplicates_suppressed"] == 0
    assert rt.dead_letters.list() == [] and rt.delayed.pending() == 0
    assert set(rt.ledger.delivered([first.key, alias.key, other.key])) == {first.key, alias.key, other.key}


def test_a_row_our_models_refuse_is_dead_lettered_alone_and_the_rest_is_sent(sandbox_runtime):
    rt, url = sandbox_runtime
    ops = [event_op(n, f"C{n % 2}") for n in range(6)]
    ops[3] = event_op(3, "C1", metric="M" * 200)  # over the SDK model's limit: never reaches Klaviyo
    process_envelope(envelope(ops, "batch"), rt)

    (entry,) = rt.dead_letters.list("batch")
    assert entry.operations[0]["key"] == ops[3].key and "refused before sending" in entry.reason
    assert "row 3" in entry.reason or "metric" in entry.reason
    stored: list[dict] = wait_for(lambda: sandbox_events(url).get(METRIC), 10, message="the events stored")  # type: ignore[assignment]
    assert sorted(e["unique_id"] for e in stored) == ["SO0", "SO1", "SO2", "SO4", "SO5"]
    assert len(rt.ledger.delivered([op.key for op in ops])) == 5
