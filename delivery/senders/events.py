"""Events: one create call, or bulk create jobs grouped per profile (each event sent once per request).

Every event carries its operation's ledger key in its properties (`bcsync_key`): Klaviyo's `GET /api/events`
does not return an event's unique_id, so that key is how the fleet tells, from Klaviyo alone, what it already
sent under which id (the refund ids after state loss: docs/order-lifecycle.md).
"""

from __future__ import annotations

from typing import Any

from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.limits import (
    MAX_BULK_EVENTS,
)
from delivery.results import SendResult, ledger_entry
from delivery.senders.rows import chunks, without_rejected_rows
from sync.operations import Operation
from sync.orders.refund_ids import KEY_PROPERTY


def send_events(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    if len(ops) == 1:
        resp = client.create_event(stamped(ops[0]))
        result.delivered.append(ledger_entry(ops[0], resp.status, "events"))
        return
    ops, repeats = _first_of_each_event(ops)
    for chunk in chunks(ops, MAX_BULK_EVENTS):
        sent = without_rejected_rows(
            chunk, lambda rows: client.bulk_create_events([stamped(op) for op in rows]), result
        )
        if sent is None:
            continue
        rows, _ = sent
        # Klaviyo has no status endpoint for event bulk jobs: the 202 is all there is to record.
        result.delivered.extend(ledger_entry(op, 202, "event-bulk-create-jobs") for op in rows)
    _same_outcome_for_repeats(repeats, result)


def stamped(op: Operation) -> dict[str, Any]:
    """The event's payload with its ledger key among its properties."""
    return {**op.payload, "properties": {**(op.payload.get("properties") or {}), KEY_PROPERTY: op.key}}



def _event_identities(op: Operation) -> set[tuple[str, ...]]:
    """What makes two event operations one event to Klaviyo: the same key, or the same unique_id for the
    same metric and a shared profile identifier (Klaviyo refuses a bulk request repeating one)."""
    ids: set[tuple[str, ...]] = {("key", op.key)}
    unique_id, metric, profile = op.payload.get("unique_id"), op.payload.get("metric"), op.payload.get("profile")
    if unique_id and isinstance(profile, dict):
        ids |= {(str(metric), str(unique_id), name, str(profile[name]))
                for name in ("id", "email", "phone_number", "external_id", "anonymous_id") if profile.get(name)}
    return ids



def _first_of_each_event(ops: list[Operation]) -> tuple[list[Operation], list[tuple[Operation, Operation]]]:
    """The events to send, each once, and the repeats as (repeat, the operation sent for it)."""
    first: dict[tuple[str, ...], Operation] = {}
    unique: list[Operation] = []
    repeats: list[tuple[Operation, Operation]] = []
    for op in ops:
        ids = _event_identities(op)
        earlier = next((first[i] for i in ids if i in first), None)
        if earlier is not None:
            repeats.append((op, earlier))
            continue
        first.update(dict.fromkeys(ids, op))
        unique.append(op)
    return unique, repeats



def _same_outcome_for_repeats(repeats: list[tuple[Operation, Operation]], result: SendResult) -> None:
    delivered = {entry.key: entry for entry in result.delivered}
    refused = {op.key: exc for op, exc in result.rejected}
    for repeat, sent in repeats:
        if sent.key in delivered:
            if repeat.key != sent.key:
                result.delivered.append(delivered[sent.key].model_copy(update={"key": repeat.key,
                                                                               "record": repeat.record}))
        elif sent.key in refused:
            result.rejected.append((repeat, refused[sent.key]))

