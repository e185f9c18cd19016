"""The delivery decision for envelopes that never reach Klaviyo: malformed payloads and erased customers.
Real Redis; the Klaviyo client points at a closed port, so any request attempt would show as a retry."""

from __future__ import annotations

import json
import time

from config.mapping import Mapping
from config.settings import Settings
from connectors.klaviyo.limiter import FleetRateLimiter
from delivery.engine import process_envelope
from delivery.envelope import envelope
from delivery.runtime import Runtime
from sandbox.server import free_port
from state.erasure import ErasureTombstones
from state.factory import Stores
from state.task_runs import current_run
from sync.ledger import LedgerEntry
from sync.operations import Operation


def make_runtime(redis_client, redis_url: str) -> Runtime:
    settings = Settings(redis_url=redis_url, key_prefix="t", klaviyo_base_url=f"http://127.0.0.1:{free_port()}",
                        klaviyo_api_key="pk_test_x", max_attempts=3)
    stores = Stores(settings, Mapping(), redis_client)
    return Runtime(stores=stores, limiter=FleetRateLimiter(redis_client, "t"))


def test_a_payload_our_models_refuse_is_dead_lettered_not_lost(redis_client, redis_url):
    rt = make_runtime(redis_client, redis_url)
    op = Operation(kind="profile_deletion", key="erase:C1", lane="fast", payload={"profile": {"external_id": "C1"}})
    process_envelope(envelope([op], "fast"), rt)
    (entry,) = rt.dead_letters.list("fast")
    assert entry.operations[0]["key"] == "erase:C1" and "refused before sending" in entry.reason
    assert rt.delayed.pending() == 0


def test_a_malformed_envelope_is_dead_lettered(redis_client, redis_url):
    rt = make_runtime(redis_client, redis_url)
    env = envelope([Operation(kind="event", key="k", payload={})], "default")
    env["operations"][0]["kind"] = "teleport"
    process_envelope(env, rt)
    assert len(rt.dead_letters.list("default")) == 1


def test_operations_for_a_customer_erased_after_they_were_computed_are_dropped(redis_client, redis_url):
    rt = make_runtime(redis_client, redis_url)
    ErasureTombstones(redis_client, "t").mark("C1", "2026-02-01T00:00:00Z")
    stale = Operation(kind="profile_upsert", key="profile:C1", lane="fast",
                      payload={"external_id": "C1", "first_name": "Ann"},
                      version="2026-01-15T10:00:00Z#1", record="customer:C1")
    process_envelope(envelope([stale], "fast"), rt)
    assert rt.delayed.pending() == 0 and rt.dead_letters.list() == []  # never sent, nothing to retry
    newer = stale.model_copy(update={"version": "2026-03-01T00:00:00Z#1"})
    process_envelope(envelope([newer], "fast"), rt)
    assert rt.delayed.pending() == 1  # a newer ERP change goes through (here: the closed port, so a retry)


def test_an_unexpected_error_in_a_sender_is_retried_then_dead_lettered_with_its_traceback(redis_client, redis_url):
    # a bug may be fixed by a deploy: retried with backoff like a transient failure, never dropped
    rt = make_runtime(redis_client, redis_url)
    ops = [Operation(kind="variant_inventory", key=f"stock:V{i}", lane="batch", payload={"inventory_quantity": 1},
                     version="2026-01-01T00:00:00Z#000001") for i in range(2)]
    message = envelope(ops, "batch")
    for _ in range(rt.settings.max_attempts - 1):
        process_envelope(message, rt)
        assert rt.dead_letters.list("batch") == [] and rt.delayed.pending() == 1
        body = json.loads(redis_client.hget(f"{rt.settings.key_prefix}:delayed:payload", message["id"]))
        message = body["args"][0]
        redis_client.delete(f"{rt.settings.key_prefix}:delayed:payload", f"{rt.settings.key_prefix}:delayed:due")
    process_envelope(message, rt)
    (entry,) = rt.dead_letters.list("batch")
    assert [o["key"] for o in entry.operations] == ["stock:V0", "stock:V1"]
    assert "KeyError" in entry.reason and len(entry.attempts) == rt.settings.max_attempts
    assert entry.attempts[-1].traceback and "send_variant_inventory" in entry.attempts[-1].traceback


def test_every_operation_of_an_erased_customer_in_one_envelope_is_dropped(redis_client, redis_url):
    rt = make_runtime(redis_client, redis_url)
    ErasureTombstones(redis_client, "t").mark("C1", "2026-02-01T00:00:00Z")
    ops = [Operation(kind="profile_upsert", key=f"profile:C1:{n}", lane="batch", payload={"external_id": "C1"},
                     version=f"2026-01-15T10:00:0{n}Z#1", record="customer:C1") for n in range(2)]
    process_envelope(envelope(ops, "batch"), rt)
    assert rt.delayed.pending() == 0 and rt.dead_letters.list() == []  # neither was sent


def test_transient_failures_during_a_confirmed_outage_wait_instead_of_dead_lettering(redis_client, redis_url):
    rt = make_runtime(redis_client, redis_url)  # Klaviyo at a closed port: every attempt is a connection error
    op = Operation(kind="profile_upsert", key="profile:C9", lane="fast", payload={"external_id": "C9"})
    message = envelope([op], "fast")
    message["attempts"] = [{"at": 1.0, "status": 503, "error": "unavailable"}] * (rt.settings.max_attempts - 1)
    rt.stores.outage.note_waiting("another-envelope", now=time.time() - 60)  # the probe failed for a minute
    process_envelope(message, rt)
    assert rt.dead_letters.list("fast") == [] and rt.delayed.pending() == 1
    rt.stores.outage.resume()  # Klaviyo answered the probe: this payload's failures count again
    process_envelope(message, rt)
    (entry,) = rt.dead_letters.list("fast")
    assert "gave up after" in entry.reason


def test_a_done_envelope_forgets_its_task_run_in_its_last_pipeline_and_a_failed_one_keeps_it(redis_client, redis_url):
    # the poison counter's record goes with the after-delivery pipeline (one round trip fewer per message); a
    # message whose delivery did not finish keeps it, for the task base to hand on with its count
    rt = make_runtime(redis_client, redis_url)
    done = Operation(kind="event", key="event:Placed Order:SO1", lane="default", payload={
        "metric": "Placed Order", "profile": {"email": "ann@example.com"}, "properties": {"OrderId": "SO1"},
        "time": "2026-03-02T10:00:00+00:00", "value": 10.0, "unique_id": "SO1"})
    rt.ledger.record([LedgerEntry(key=done.key, delivered_at=time.time(), status=202, endpoint="events")])
    for message_id, op, forgotten in (("m-done", done, True),
                                      ("m-failed", done.model_copy(update={"key": "event:Placed Order:SO2"}), False)):
        rt.stores.task_runs.started(message_id, "bcsync.deliver", "default")
        token = current_run.set(message_id)
        try:
            process_envelope(envelope([op], "default"), rt)  # SO1 is in the ledger: skipped; SO2 meets a closed port
            assert (rt.stores.task_runs.get(message_id) is None) is forgotten
            assert (current_run.get() is None) is forgotten
        finally:
            current_run.reset(token)
    assert rt.delayed.pending() == 1  # SO2 waits for its retry
