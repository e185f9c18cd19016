"""Packing operations into delivery envelopes, as the sender registry says for each kind and lane."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.klaviyo.builders import serialized_size
from connectors.klaviyo.limits import MAX_REQUEST_BYTES
from delivery.envelope import envelope
from delivery.registry import SENDERS
from sync.operations import Operation

# A bulk request's body is its rows plus what wraps them: per row a resource wrapper (type, attributes, the
# metric's object, the event's ledger key among its properties) and per request the job's envelope. Rows are
# measured as their payload plus ROW_OVERHEAD bytes, and a request holds at most REQUEST_BYTES of them, so
# that a job cut here is never refused for its size (Klaviyo: 5 MB per request).
ROW_OVERHEAD = 512
REQUEST_BYTES = MAX_REQUEST_BYTES - 64 * 1024


def group_for_delivery(operations: list[Operation]) -> list[dict[str, Any]]:
    """Envelopes for a list of operations: single-call kinds one per operation on the fast and default
    lanes; consent always in jobs (unsubscribes first); the batch lane packs bulk requests, each up to the
    endpoint's row limit and Klaviyo's request size."""
    out: list[dict[str, Any]] = []
    unsubscribes = [op for op in operations if op.kind == "unsubscribe"]
    rest = [op for op in operations if op.kind != "unsubscribe"]
    for op_list in (unsubscribes, rest):
        groups: dict[tuple[str, str], list[Operation]] = {}
        for op in op_list:
            packs = SENDERS[op.kind].packs(op.lane)
            if packs:
                groups.setdefault((op.lane, op.kind), []).append(op)
            else:
                out.append(envelope([op], op.lane))
        for (lane, kind), ops in groups.items():
            out.extend(envelope(chunk, lane) for chunk in cut(ops, SENDERS[kind].batch_size))
    return out


def cut(ops: list[Operation], max_rows: int, max_bytes: int = REQUEST_BYTES) -> Iterator[list[Operation]]:
    """Consecutive chunks of at most `max_rows` operations whose measured rows fit in `max_bytes` (a row
    larger than that alone goes in a chunk of its own: its sender refuses it, naming it)."""
    chunk: list[Operation] = []
    used = 0
    for op in ops:
        size = serialized_size(op.payload) + ROW_OVERHEAD
        if chunk and (len(chunk) >= max_rows or used + size > max_bytes):
            yield chunk
            chunk, used = [], 0
        chunk.append(op)
        used += size
    if chunk:
        yield chunk
