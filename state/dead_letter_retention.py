"""The retention policy of dead letters (pure): what is kept until purged, when the sweep warns, when it deletes.

- Consent operations (`subscribe`, `unsubscribe`) and privacy deletions (`profile_deletion`) are never deleted
  by the fleet, nor is an entry whose operations include one, nor a task message that may carry one (a customer
  change event can hold a consent change). Only an operator's `bcsync dlq purge` removes them.
- Any other entry expires `dead_letter_ttl_days` after it was dead-lettered. The sweep first raises a
  `dead_letter_expiring` exception for its owner once the expiry is within the warning window, and deletes it
  (recording `dead_letter_expired`) only when it is past its expiry *and* the warning is a whole window old: a
  warning that came late (workers were down) pushes the expiry to warned_at + window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sized
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class RetainedEntry(Protocol):
    """What the retention rules read of a dead letter (state.dead_letters.DeadLetter; a protocol, so the two
    modules do not import each other)."""

    id: str
    task: str
    lane: str
    kind: str
    reason: str
    first_failure: float
    last_failure: float
    expires_at: float | None
    warned_at: float | None

    @property
    def attempts(self) -> Sized: ...
    @property
    def records(self) -> list[str]: ...
    @property
    def code(self) -> str | None: ...
    def model_dump_json(self) -> str: ...
    def model_dump(self) -> dict[str, Any]: ...

EXPIRING = "dead_letter_expiring"  # exception types (owners: config.mapping.ExceptionOwners)
EXPIRED = "dead_letter_expired"
KEPT_KINDS = frozenset({"subscribe", "unsubscribe", "profile_deletion"})
# ERP record data and Klaviyo attributes: a field called "kind" in there says nothing about the operation.
_OPAQUE = frozenset({"record", "payload"})
_MAX_DEPTH = 6
KEEP_ENTRY_IN_RECORD_BYTES = 64 * 1024  # a deleted entry up to this size stays readable in the register

Step = Literal["keep", "warn", "delete"]


@dataclass
class SweepReport:
    migrated: list[str] = field(default_factory=list)  # legacy entries given an expiry and stripped of their TTL
    warned: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def keeps_until_purged(kind: str, operations: list[dict[str, Any]], args: list[Any] | None) -> bool:
    if kind in KEPT_KINDS or any(op.get("kind") in KEPT_KINDS for op in operations):
        return True
    return args is not None and _may_carry_consent(args, 0)


def _may_carry_consent(value: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        if value.get("kind") in KEPT_KINDS or value.get("resource") == "customer":
            return True
        return any(_may_carry_consent(v, depth + 1) for k, v in value.items() if k not in _OPAQUE)
    if isinstance(value, list):
        return any(_may_carry_consent(v, depth + 1) for v in value)
    return False


def next_step(entry: RetainedEntry, now: float, window: float) -> Step:
    if entry.expires_at is None:
        return "keep"
    if entry.warned_at is None:
        return "warn" if now >= entry.expires_at - window else "keep"
    if now >= entry.expires_at and now >= entry.warned_at + window:
        return "delete"
    return "keep"


def record_key(entry_id: str) -> str:
    """The exception register's record key of a dead letter."""
    return f"dlq:{entry_id}"


def utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _what(entry: RetainedEntry) -> str:
    recs = entry.records
    about = recs[0] + (f" +{len(recs) - 1} more" if len(recs) > 1 else "") if recs else "no record"
    if entry.kind == "task":
        return f"task {entry.task}: {about}, lane {entry.lane}"
    return f"{entry.kind} {about}, lane {entry.lane}, task {entry.task}"


def expiring_reason(entry: RetainedEntry) -> str:
    assert entry.expires_at is not None
    return (f"dead letter {entry.id} ({_what(entry)}) is deleted after {utc(entry.expires_at)} unless requeued "
            f"or purged: bcsync dlq show {entry.id}. It failed: {entry.reason}")


def expired_reason(entry: RetainedEntry, now: float) -> str:
    warned = utc(entry.warned_at) if entry.warned_at else "never"
    return (f"dead letter {entry.id} ({_what(entry)}) deleted at {utc(now)} by retention (owner warned "
            f"{warned}); its work was not done. It failed: {entry.reason}")


def details(entry: RetainedEntry, keep_entry: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dead_letter": entry.id, "lane": entry.lane, "task": entry.task, "kind": entry.kind,
        "records": entry.records[:20], "code": entry.code, "tries": len(entry.attempts),
        "first_failure": entry.first_failure, "last_failure": entry.last_failure,
        "expires_at": entry.expires_at, "warned_at": entry.warned_at,
    }
    if keep_entry:  # what was deleted stays readable for the register's retention, when it is small
        dump = entry.model_dump_json()
        out["entry"] = entry.model_dump() if len(dump) <= KEEP_ENTRY_IN_RECORD_BYTES else f"{len(dump)} bytes"
    return out
