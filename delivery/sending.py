"""Sending operations to Klaviyo: the plain function the delivery engine calls (Saleor's transport pattern).

`send_operations` takes operations of one kind, drops what the ledger says was already delivered (or is
older than what was delivered), sends the rest in one call or one bulk request, and returns what happened
row by row. A failure of the whole request raises the client's error class; the task decides retry,
delay or dead letter from it.
"""

from __future__ import annotations

from connectors.klaviyo.client import KlaviyoClient
from delivery.registry import SENDERS
from delivery.results import SendResult
from state.ledger import Ledger
from sync.ledger import LedgerEntry
from sync.operations import Operation


def pending(ops: list[Operation], ledger: Ledger,
            delivered: dict[str, LedgerEntry] | None = None) -> tuple[list[Operation], list[str]]:
    """Operations still to send: events whose key is in the ledger are done; versioned writes are done
    when the ledger holds the same or a newer version (newest figure wins, older consent never overtakes).
    A reconciliation repair is always sent: the ledger says it was delivered, Klaviyo says it is not there.
    `delivered`: the ledger's entries of `ops`, when the caller read them already (in its own round trip)."""
    if delivered is None:
        delivered = ledger.delivered([op.key for op in ops])
    todo: list[Operation] = []
    skipped: list[str] = []
    for op in ops:
        entry = delivered.get(op.key)
        if entry is None or op.repair:  # a repair re-delivers what Klaviyo lost or changed
            todo.append(op)
        elif op.kind == "event" or op.version is not None and entry.version is not None and entry.version >= op.version:
            skipped.append(op.key)
        else:
            todo.append(op)
    return todo, skipped


def send_operations(ops: list[Operation], client: KlaviyoClient, ledger: Ledger,
                    delivered: dict[str, LedgerEntry] | None = None) -> SendResult:
    todo, skipped = pending(ops, ledger, delivered)
    result = SendResult(skipped=skipped)
    if not todo:
        return result
    kind = todo[0].kind
    if any(op.kind != kind for op in todo):
        raise ValueError("one delivery carries operations of one kind")
    SENDERS[kind].send(todo, client, result)
    return result
