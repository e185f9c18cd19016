"""What one send did, row by row, and the ledger entry of a delivered row."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from connectors.klaviyo.errors import KlaviyoError
from sync.ledger import LedgerEntry, summarize_response
from sync.operations import Operation


@dataclass
class SendResult:
    delivered: list[LedgerEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rejected: list[tuple[Operation, KlaviyoError]] = field(default_factory=list)
    # work to come back to: (task name, args, delay seconds), e.g. polling a bulk import job
    followups: list[tuple[str, list[Any], float]] = field(default_factory=list)
    # operation key -> Klaviyo's answer (`data`) for a profile written by a single call: its id and identifiers
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (operation, X-Klaviyo-Partial-Failure): accepted without part of it (a phone Klaviyo could not validate)
    partial_failures: list[tuple[Operation, str]] = field(default_factory=list)



def ledger_entry(
    op: Operation, status: int | None, endpoint: str, data: Any = None, version: str | None = None
) -> LedgerEntry:
    """What the ledger keeps of a delivered row: its version (`version` when the row carried another one than
    its operation's), and only the ids of Klaviyo's answer."""
    return LedgerEntry(
        key=op.key, delivered_at=time.time(), status=status, endpoint=endpoint,
        version=version if version is not None else op.version, record=op.record, response=summarize_response(data),
        repair=op.repair,
    )

