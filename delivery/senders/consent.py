"""Marketing consent: subscription and unsubscription jobs, and the unsubscribe a late subscribe crossed."""

from __future__ import annotations

from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.limits import (
    MAX_SUBSCRIBE_PROFILES,
    MAX_UNSUBSCRIBE_PROFILES,
)
from delivery.results import SendResult, ledger_entry
from delivery.senders.rows import chunks, without_rejected_rows
from state.ledger import Ledger
from sync.operations import Operation


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
                                   version=entry.version + "~again", record=op.record, profile_of=op.profile_of))
    return again



def send_subscribe(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    for chunk in chunks(ops, MAX_SUBSCRIBE_PROFILES):
        sent = without_rejected_rows(chunk, lambda rows: client.subscribe([op.payload for op in rows]), result)
        if sent is not None:
            result.delivered.extend(ledger_entry(op, 202, "subscribe") for op in sent[0])



def send_unsubscribe(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    for chunk in chunks(ops, MAX_UNSUBSCRIBE_PROFILES):
        sent = without_rejected_rows(
            chunk, lambda rows: client.unsubscribe([op.payload for op in rows]), result
        )
        if sent is not None:
            result.delivered.extend(ledger_entry(op, 202, "unsubscribe") for op in sent[0])

