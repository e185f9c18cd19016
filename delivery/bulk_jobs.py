"""Following up on bulk profile import jobs: poll their status, read back per-row import errors.

A poll that cannot be answered now (the fleet's budget, a 429, a parked endpoint, a 5xx) comes back through
the delayed-retry schedule; a poll Klaviyo refuses for good dead-letters the job's rows: nothing is dropped.
"""

from __future__ import annotations

import time
from typing import Any

from config.task_names import CHECK_PROFILE_IMPORT_JOB as CHECK_TASK
from config.task_names import deliver_task
from connectors.klaviyo.errors import (
    EndpointParkedError,
    KlaviyoError,
    RateLimitedLocally,
    TransientError,
    row_of_pointer,
    try_again_in,
)
from delivery.identity import upsert_customer, written
from delivery.runtime import Runtime
from state.dead_letters import Attempt
from sync.ledger import LedgerEntry
from sync.operations import Operation

ENDPOINT = "profile-bulk-import-jobs"
JOB_POLL_SECONDS = 2.0
IDENTIFIERS = ("email", "phone_number", "external_id")


def _row_identity(attrs: dict[str, Any]) -> set[str]:
    return {f"{k}={attrs[k]}" for k in IDENTIFIERS if attrs.get(k)}


def _failed_rows(errors: list[dict[str, Any]], ops: list[Operation]) -> dict[int, dict[str, Any]]:
    """Row index -> its import error. The error's `source.pointer` names the row of the job's request
    (`/data/attributes/profiles/data/<i>`, same order as `ops`); `original_payload`, when Klaviyo sends it,
    is matched by identifier otherwise."""
    by_identity = {ident: i for i, op in enumerate(ops) for ident in _row_identity(op.payload)}
    failed: dict[int, dict[str, Any]] = {}
    for err in errors:
        attrs = err.get("attributes", {}) if isinstance(err, dict) else {}
        source = _source(attrs)
        row = row_of_pointer(source.get("pointer"))
        if row is not None and 0 <= row < len(ops):
            failed[row] = attrs
            continue
        original = attrs.get("original_payload") or {}
        for ident in _row_identity(original if isinstance(original, dict) else {}):
            if ident in by_identity:
                failed[by_identity[ident]] = attrs
                break
    return failed


def _source(attrs: dict[str, Any]) -> dict[str, Any]:
    source = attrs.get("source")
    return source if isinstance(source, dict) else {}


def _error_item(attrs: dict[str, Any]) -> dict[str, Any]:
    source = _source(attrs)
    return {"id": attrs.get("id"), "status": attrs.get("status"), "code": attrs.get("code"),
            "title": attrs.get("title"), "detail": attrs.get("detail"), "pointer": source.get("pointer")}


def check_profile_import_job(
    rt: Runtime, job_id: str, operations: list[dict[str, Any]], lane: str, holder: str | None = None
) -> None:
    """`holder`: the envelope whose write leases the job's customers are under until it completes."""
    ops = [Operation.model_validate(o) for o in operations]
    client = rt.client(lane)
    customers = {code for op in ops if (code := upsert_customer(op))}

    def poll_later(delay: float) -> None:
        if holder:
            rt.stores.profiles.renew(customers, holder, rt.settings.profile_lease_seconds)
        rt.delayed.add(CHECK_TASK, [job_id, operations, lane, holder], lane, time.time() + max(0.05, delay))

    try:
        job = client.get_profile_import_job(job_id)
        status = job.get("attributes", {}).get("status") if isinstance(job, dict) else None
        if status not in ("complete", "cancelled"):
            poll_later(JOB_POLL_SECONDS)
            return
        errors = list(client.iter_profile_import_errors(job_id))
    except (RateLimitedLocally, EndpointParkedError, TransientError) as exc:
        poll_later(try_again_in(exc, JOB_POLL_SECONDS * 2, time.time()))
        return
    except KlaviyoError as exc:  # the job cannot be read (e.g. 404): its rows wait for an operator
        data = exc.to_dict()
        attempt = Attempt(at=time.time(), status=exc.status, endpoint=exc.endpoint, error=data["message"],
                          errors=data["errors"])
        rt.dead_letters.add(deliver_task("profile_upsert"), lane, "profile_upsert", operations, [attempt],
                            f"bulk import job {job_id} could not be read ({exc.status})")
        if holder:
            rt.stores.profiles.release(customers, holder)
        return
    _settle_rows(rt, job_id, ops, _failed_rows(errors, ops), lane, cancelled=status == "cancelled")
    if holder:
        rt.stores.profiles.release(customers, holder)


def _settle_rows(rt: Runtime, job_id: str, ops: list[Operation], failed: dict[int, dict[str, Any]], lane: str,
                 cancelled: bool) -> None:
    """A finished job: its confirmed rows to the ledger (and their field versions), the rest to dead letters."""
    now = time.time()
    rt.ledger.record([
        LedgerEntry(key=op.key, delivered_at=now, status=200, endpoint=ENDPOINT,
                    version=op.version, record=op.record, response={"job": job_id}, repair=op.repair)
        for i, op in enumerate(ops) if i not in failed and not cancelled
    ])
    if not cancelled:
        rt.stores.profiles.record_writes(
            [w for i, op in enumerate(ops) if i not in failed and (w := written(op)) is not None]
        )
    # a bulk job's rows count as delivered (and their lane's rows) when the job confirms them, not when it is sent
    confirmed = 0 if cancelled else len(ops) - len(failed)
    rt.stores.lane_stats.delivered(lane, confirmed, None)
    rt.stores.lane_stats.outcome(lane, "profile_upsert", "delivered", confirmed)
    # the rows not confirmed: refused by the job (its errors) or cancelled with it; either way dead-lettered below
    rt.stores.lane_stats.outcome(lane, "profile_upsert", "cancelled" if cancelled else "refused", len(ops) - confirmed)
    rt.stores.lane_stats.dead_lettered(lane, "profile_upsert", len(ops) - confirmed)
    for i, op in enumerate(ops):
        if i in failed:
            attrs = failed[i]
            attempt = Attempt(at=now, endpoint=ENDPOINT, error=f"import error: {attrs.get('code') or 'unknown'}",
                              errors=[_error_item(attrs)])
            reason = f"bulk import job {job_id} reported an error for this row"
        elif cancelled:
            attempt = Attempt(at=now, endpoint=ENDPOINT, error="bulk import job cancelled")
            reason = f"bulk import job {job_id} was cancelled before this row was confirmed"
        else:
            continue
        rt.dead_letters.add(deliver_task("profile_upsert"), lane, "profile_upsert", [op.model_dump(mode="json")],
                            [attempt], reason)
