"""Profiles: one import call, or bulk import jobs whose rows are checked later (`bulk_jobs`)."""

from __future__ import annotations

from config.task_names import CHECK_PROFILE_IMPORT_JOB
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.limits import (
    MAX_BULK_PROFILES,
)
from delivery.results import SendResult, ledger_entry
from delivery.senders.rows import chunks, without_rejected_rows
from sync.operations import Operation


def send_profiles(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    if len(ops) == 1:
        resp = client.import_profile(ops[0].payload)
        result.delivered.append(ledger_entry(ops[0], resp.status, "profile-import", resp.data))
        if isinstance(resp.data, dict) and isinstance(resp.data.get("data"), dict):
            result.answers[ops[0].key] = resp.data["data"]
        if resp.partial_failure is not None:
            result.partial_failures.append((ops[0], resp.partial_failure))
        return
    for chunk in chunks(ops, MAX_BULK_PROFILES):
        remaining = without_rejected_rows(
            chunk, lambda rows: client.bulk_import_profiles([op.payload for op in rows]), result
        )
        if remaining is None:
            continue
        rows, job_id = remaining
        result.followups.append(
            (CHECK_PROFILE_IMPORT_JOB, [job_id, [op.model_dump(mode="json") for op in rows]], 2.0)
        )

