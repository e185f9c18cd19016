"""Sending operations to Klaviyo: plain functions the delivery task calls (Saleor's transport pattern).

`send_operations` takes operations of one kind, drops what the ledger says was already delivered (or is
older than what was delivered), sends the rest in one call or one bulk request, and returns what happened
row by row. A failure of the whole request raises the client's error class; the task decides retry,
delay or dead letter from it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import KlaviyoError, KlaviyoErrorItem, PermanentError
from connectors.klaviyo.models import PayloadError
from sync.ledger import Ledger, LedgerEntry, summarize_response
from sync.operations import Operation

SINGLE_CALL_KINDS = {"catalog_item_upsert", "catalog_variant_upsert", "catalog_retire", "profile_deletion"}
BULK_EVENTS_MAX = 1000
BULK_PROFILES_MAX = 10_000
SUBSCRIBE_MAX = 1000
UNSUBSCRIBE_MAX = 100


@dataclass
class SendResult:
    delivered: list[LedgerEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[tuple[Operation, KlaviyoError]] = field(default_factory=list)
    # work to come back to: (task name, args, delay seconds), e.g. polling a bulk import job
    followups: list[tuple[str, list[Any], float]] = field(default_factory=list)


def pending(ops: list[Operation], ledger: Ledger) -> tuple[list[Operation], list[str]]:
    """Operations still to send: events whose key is in the ledger are done; versioned writes are done
    when the ledger holds the same or a newer version (newest figure wins, older consent never overtakes)."""
    delivered = ledger.delivered([op.key for op in ops])
    todo: list[Operation] = []
    skipped: list[str] = []
    for op in ops:
        entry = delivered.get(op.key)
        if entry is None:
            todo.append(op)
        elif op.kind == "event" or op.version is not None and entry.version is not None and entry.version >= op.version:
            skipped.append(op.key)
        else:
            todo.append(op)
    return todo, skipped


def _entry(op: Operation, status: int | None, endpoint: str, data: Any = None) -> LedgerEntry:
    return LedgerEntry(
        key=op.key, delivered_at=time.time(), status=status, endpoint=endpoint, version=op.version,
        record=op.record, response=summarize_response(data),
    )


def send_operations(ops: list[Operation], client: KlaviyoClient, ledger: Ledger) -> SendResult:
    todo, skipped = pending(ops, ledger)
    result = SendResult(skipped=skipped)
    if not todo:
        return result
    kind = todo[0].kind
    if any(op.kind != kind for op in todo):
        raise ValueError("one delivery carries operations of one kind")
    sender = _SENDERS[kind]
    sender(todo, client, result)
    return result


def crossed_by_newer_unsubscribe(subscribed: list[Operation], ledger: Ledger) -> list[Operation]:
    """Unsubscribes to send again because a subscribe just sent crossed them in flight.

    A subscribe that passed the ledger check can still reach Klaviyo after a newer unsubscribe of the same
    person (a slow batch job against a fast-lane unsubscribe). The ledger keeps the newest version per consent
    key, so a newer unsubscribe entry there means ours arrived late: the unsubscribe is sent again, with its
    own version, so it lands after ours. Unsubscribes win ties."""
    entries = ledger.delivered([op.key for op in subscribed])
    again: list[Operation] = []
    for op in subscribed:
        entry = entries.get(op.key)
        if entry is None or entry.endpoint != "unsubscribe" or not entry.version or not op.version:
            continue
        if entry.version >= op.version:
            profile = {k: v for k, v in op.payload.get("profile", {}).items() if k in ("email", "phone_number")}
            payload = {"channel": op.payload["channel"], "profile": profile, "list_id": op.payload.get("list_id")}
            again.append(Operation(kind="unsubscribe", key=op.key, lane="fast", payload=payload,
                                   version=entry.version + "~again", record=op.record))
    return again


# --- one function per kind ------------------------------------------------------------------------


def _send_profiles(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    if len(ops) == 1:
        resp = client.import_profile(ops[0].payload)
        result.delivered.append(_entry(ops[0], resp.status, "profile-import", resp.data))
        return
    for chunk in _chunks(ops, BULK_PROFILES_MAX):
        remaining = _without_rejected_rows(
            chunk, lambda rows: client.bulk_import_profiles([op.payload for op in rows]), result
        )
        if remaining is None:
            continue
        rows, job_id = remaining
        result.followups.append(
            ("bcsync.check_profile_import_job", [job_id, [op.model_dump(mode="json") for op in rows]], 2.0)
        )


def _send_events(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    if len(ops) == 1:
        resp = client.create_event(ops[0].payload)
        result.delivered.append(_entry(ops[0], resp.status, "events"))
        return
    ops, repeats = _first_of_each_event(ops)
    for chunk in _chunks(ops, BULK_EVENTS_MAX):
        sent = _without_rejected_rows(
            chunk, lambda rows: client.bulk_create_events([op.payload for op in rows]), result
        )
        if sent is None:
            continue
        rows, _ = sent
        # Klaviyo has no status endpoint for event bulk jobs: the 202 is all there is to record.
        result.delivered.extend(_entry(op, 202, "event-bulk-create-jobs") for op in rows)
    _same_outcome_for_repeats(repeats, result)


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


def _send_subscribe(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    for chunk in _chunks(ops, SUBSCRIBE_MAX):
        sent = _without_rejected_rows(chunk, lambda rows: client.subscribe([op.payload for op in rows]), result)
        if sent is not None:
            result.delivered.extend(_entry(op, 202, "subscribe") for op in sent[0])


def _send_unsubscribe(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    for chunk in _chunks(ops, UNSUBSCRIBE_MAX):
        sent = _without_rejected_rows(
            chunk, lambda rows: client.unsubscribe([op.payload for op in rows]), result
        )
        if sent is not None:
            result.delivered.extend(_entry(op, 202, "unsubscribe") for op in sent[0])


def _send_variant_inventory(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    for op in ops:
        resp = client.update_catalog_variant(
            op.payload["external_id"], {"inventory_quantity": op.payload["inventory_quantity"]}
        )
        result.delivered.append(_entry(op, resp.status, "catalog-variants:update", resp.data))


def _send_single(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    for op in ops:
        try:
            resp = _SINGLE[op.kind](client, op.payload)
        except PermanentError as exc:
            if op.kind == "catalog_retire" and exc.status == 404:
                # retiring what Klaviyo never had (discontinued before it was ever synced) is already done
                result.delivered.append(_entry(op, 404, op.kind))
                continue
            if len(ops) == 1:
                raise
            result.rejected.append((op, exc))
            continue
        result.delivered.append(_entry(op, resp.status, op.kind, resp.data))


def _upsert_catalog_item(client: KlaviyoClient, payload: dict[str, Any]) -> Any:
    return client.upsert_catalog_item(payload)


def _upsert_catalog_variant(client: KlaviyoClient, payload: dict[str, Any]) -> Any:
    return client.upsert_catalog_variant(payload)


def _retire(client: KlaviyoClient, payload: dict[str, Any]) -> Any:
    return client.retire_catalog_entry(payload)


def _delete_profile(client: KlaviyoClient, payload: dict[str, Any]) -> Any:
    return client.request_profile_deletion(payload)


_SINGLE = {
    "catalog_item_upsert": _upsert_catalog_item,
    "catalog_variant_upsert": _upsert_catalog_variant,
    "catalog_retire": _retire,
    "profile_deletion": _delete_profile,
}

_SENDERS = {
    "profile_upsert": _send_profiles,
    "event": _send_events,
    "subscribe": _send_subscribe,
    "unsubscribe": _send_unsubscribe,
    "variant_inventory": _send_variant_inventory,
    **{kind: _send_single for kind in SINGLE_CALL_KINDS},
}
from tasks.transport_catalog import BULK_SENDERS  # noqa: E402  catalog bulk jobs, stock newest-wins (#6)

_SENDERS.update(BULK_SENDERS)


# --- bulk requests refused because of some rows ----------------------------------------------------


def _without_rejected_rows(
    rows: list[Operation], call: Any, result: SendResult
) -> tuple[list[Operation], Any] | None:
    """Send `rows`; when Klaviyo refuses the request because of some rows (400 with pointers), reject those
    rows, each with its own errors, and resend the rest. The client maps Klaviyo's pointers back to indexes
    of the payloads it was given (`payload_rows`; for events grouped per profile, every event of the named
    group - narrowed here to the one event a pointer names), and says which rows an earlier job of the same
    call already delivered (`delivered_rows`). A row our own models refuse (`PayloadError` with its row) is
    rejected the same way, before anything is sent. Returns the rows sent and the call's answer, or None
    when none were left."""
    while rows:
        try:
            return rows, call(rows)
        except PayloadError as exc:
            if exc.row is None or not 0 <= exc.row < len(rows):
                raise
            result.rejected.append((rows[exc.row], _refused_before_sending(exc)))
            rows = rows[: exc.row] + rows[exc.row + 1 :]
        except PermanentError as exc:
            at_fault = _rows_at_fault(exc)
            bad = {i: items for i, items in at_fault.items() if 0 <= i < len(rows)}
            if not bad:
                raise
            done = set(exc.delivered_rows) - set(bad)
            for i, items in sorted(bad.items()):
                result.rejected.append((rows[i], _row_error(exc, items)))
            for i in sorted(done):
                result.delivered.append(_entry(rows[i], 202, exc.endpoint))
            rows = [op for i, op in enumerate(rows) if i not in bad and i not in done]
    return None


# `/data/attributes/events-bulk-create/data/<group>/attributes/events/data/<event>/...`: one event of a group
_EVENT_IN_GROUP = re.compile(r"^/data/attributes/events-bulk-create/data/(\d+)/attributes/events/data/(\d+)(?:/|$)")


def _rows_at_fault(exc: KlaviyoError) -> dict[int, list[KlaviyoErrorItem]]:
    """Payload index -> the errors that are its own. An error pointing into one event of a per-profile group
    names that event only (the group's n-th payload, groups keep input order); an error on the group's
    profile, or on a row of any other bulk body, names every payload of that row."""
    group_of: dict[int, int] = {}
    for index, items in exc.payload_rows.items():
        for item in items:
            found = _EVENT_IN_GROUP.match(item.pointer or "")
            if found:
                group_of[index] = int(found.group(1))
    members: dict[int, list[int]] = {}
    for index in sorted(group_of):
        members.setdefault(group_of[index], []).append(index)
    at_fault: dict[int, list[KlaviyoErrorItem]] = {}
    for index, items in exc.payload_rows.items():
        for item in items:
            found = _EVENT_IN_GROUP.match(item.pointer or "")
            if found is None:
                at_fault.setdefault(index, []).append(item)
                continue
            group, event = int(found.group(1)), int(found.group(2))
            if event < len(members.get(group, [])) and members[group][event] == index:
                at_fault.setdefault(index, []).append(item)
    return at_fault


def _row_error(exc: PermanentError, items: list[KlaviyoErrorItem]) -> PermanentError:
    """The request's error as one row's own: only the errors that point at that row."""
    return PermanentError(exc.message, status=exc.status, errors=items, endpoint=exc.endpoint)


def _refused_before_sending(exc: PayloadError) -> PermanentError:
    item = KlaviyoErrorItem(code="payload", title="Refused before sending", detail=str(exc))
    return PermanentError(f"refused before sending: {exc}", errors=[item], endpoint=exc.what)


def _chunks(ops: list[Operation], size: int) -> list[list[Operation]]:
    return [ops[i : i + size] for i in range(0, len(ops), size)]
