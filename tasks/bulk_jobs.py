"""Following up on bulk profile import jobs: poll their status, read back per-row import errors."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from connectors.klaviyo.errors import KlaviyoError, TransientError
from sync.ledger import LedgerEntry
from sync.operations import Operation
from tasks.deadletters import Attempt

if TYPE_CHECKING:
    from tasks.delivery import Runtime

JOB_POLL_SECONDS = 2.0
IDENTIFIERS = ("email", "phone_number", "external_id")


def _row_identity(attrs: dict[str, Any]) -> set[str]:
    return {f"{k}={attrs[k]}" for k in IDENTIFIERS if attrs.get(k)}


def check_profile_import_job(rt: Runtime, job_id: str, operations: list[dict[str, Any]], lane: str) -> None:
    ops = [Operation.model_validate(o) for o in operations]
    client = rt.client(lane)
    retry_args = [job_id, operations, lane]
    try:
        job = client.get_profile_import_job(job_id)
    except (TransientError, KlaviyoError) as exc:
        if isinstance(exc, TransientError):
            rt.delayed.add("bcsync.check_profile_import_job", retry_args, lane, time.time() + JOB_POLL_SECONDS * 2)
            return
        raise
    status = job.get("attributes", {}).get("status") if isinstance(job, dict) else None
    if status not in ("complete", "cancelled"):
        rt.delayed.add("bcsync.check_profile_import_job", retry_args, lane, time.time() + JOB_POLL_SECONDS)
        return
    failed: dict[int, dict[str, Any]] = {}
    by_identity = {ident: i for i, op in enumerate(ops) for ident in _row_identity(op.payload)}
    for err in client.iter_profile_import_errors(job_id):
        attrs = err.get("attributes", {}) if isinstance(err, dict) else {}
        original = attrs.get("original_payload") or {}
        for ident in _row_identity(original if isinstance(original, dict) else {}):
            if ident in by_identity:
                failed[by_identity[ident]] = attrs
                break
    now = time.time()
    rt.ledger.record([
        LedgerEntry(key=op.key, delivered_at=now, status=200, endpoint="profile-bulk-import-jobs",
                    version=op.version, record=op.record, response={"job": job_id})
        for i, op in enumerate(ops) if i not in failed
    ])
    for i, attrs in failed.items():
        attempt = Attempt(at=now, status=None, endpoint="profile-bulk-import-jobs", error="import error",
                          errors=[{"code": attrs.get("code"), "title": attrs.get("title"),
                                   "detail": attrs.get("detail"), "source": attrs.get("source")}])
        rt.dead_letters.add("bcsync.deliver", lane, "profile_upsert", [ops[i].model_dump(mode="json")],
                            [attempt], f"bulk import job {job_id} reported an error for this row")
