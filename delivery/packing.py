"""Packing operations into delivery envelopes, as the sender registry says for each kind and lane."""

from __future__ import annotations

from typing import Any

from delivery.envelope import envelope
from delivery.registry import SENDERS
from sync.operations import Operation


def group_for_delivery(operations: list[Operation]) -> list[dict[str, Any]]:
    """Envelopes for a list of operations: single-call kinds one per operation on the fast and default
    lanes; consent always in jobs (unsubscribes first); the batch lane packs bulk requests."""
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
            size = SENDERS[kind].batch_size
            out.extend(envelope(ops[i : i + size], lane) for i in range(0, len(ops), size))
    return out

