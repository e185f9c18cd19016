"""Dead-letter queues, one per lane, in Redis: nothing that failed is ever dropped silently.

An entry keeps the task, what it carried (a delivery envelope's operations, or any other task's positional
args as published), the lane, every attempt (time, HTTP status, Klaviyo's error id/code/detail/pointer, a
short traceback) and the first and last failure.

Retention never deletes silently. Entries have no Redis TTL: each carries `expires_at` (None = kept until an
operator purges it), and `DeadLetters.sweep` - run periodically by the workers - first raises a
`dead_letter_expiring` exception for the entry's owner, and deletes the entry (recording `dead_letter_expired`)
only once it is past its expiry *and* the warning is at least the warning window old. Consent operations
(subscribe, unsubscribe) and privacy deletions never expire: only `bcsync dlq purge` removes them.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from config.lanes import LANES
from state.dead_letter_retention import (
    EXPIRED,
    EXPIRING,
    SweepReport,
    details,
    expired_reason,
    expiring_reason,
    keeps_until_purged,
    next_step,
    record_key,
)
from state.exceptions import ExceptionRegister
from state.keys import RedisKeys

DAY = 86400.0
SWEEP_BATCH = 500  # entries read per MGET


class Attempt(BaseModel):
    at: float
    status: int | None = None
    endpoint: str | None = None
    error: str
    errors: list[dict[str, Any]] = Field(default_factory=list)  # Klaviyo's error objects
    traceback: str | None = None  # short traceback text of an unexpected error

    @model_serializer(mode="wrap")
    def _without_empty_traceback(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # attempts travel inside envelopes already queued and scheduled: keep their wire shape unless needed
        data: dict[str, Any] = handler(self)
        if data.get("traceback") is None:
            data.pop("traceback", None)
        return data


class DeadLetter(BaseModel):
    id: str
    task: str
    lane: str
    kind: str
    operations: list[dict[str, Any]] = Field(default_factory=list)
    attempts: list[Attempt]
    first_failure: float
    last_failure: float
    reason: str
    # Any task other than a delivery: its positional args as published (`bcsync dlq requeue` republishes them).
    args: list[Any] | None = None
    refs: list[str] = Field(default_factory=list)  # what the args are about, for operators (`customer:C1`)
    expires_at: float | None = None  # None: kept until purged (entries written before retention had a TTL)
    warned_at: float | None = None  # when the owner was told it expires

    @property
    def code(self) -> str | None:
        """Klaviyo's error code of the last attempt (`invalid`, `duplicate_profile`, ...)."""
        for attempt in reversed(self.attempts):
            for err in attempt.errors:
                if err.get("code"):
                    return str(err["code"])
            if attempt.status:
                return str(attempt.status)
        return None

    @property
    def records(self) -> list[str]:
        return [str(op.get("record") or op.get("key")) for op in self.operations] + self.refs

    @property
    def is_task(self) -> bool:
        """A task's message (republished as is), not a delivery envelope's operations."""
        return self.args is not None

    @property
    def legacy(self) -> bool:
        """Written before retention was swept: its JSON has no `expires_at`, its key has a Redis TTL."""
        return "expires_at" not in self.model_fields_set


def describe_args(args: list[Any]) -> list[str]:
    """The records a task's args are about (change events' `resource:key`, envelopes' operation records), else
    one short line of the args themselves: enough for `dlq list` and `bcsync audit`."""
    refs: list[str] = []
    for arg in args:
        for item in arg if isinstance(arg, list) else [arg]:
            refs.extend(_refs(item))
    if refs or not args:
        return list(dict.fromkeys(refs))
    text = json.dumps(args, default=str)
    return [text if len(text) <= 80 else text[:77] + "..."]


def _refs(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return []
    if "resource" in value and "key" in value:  # a ChangeEvent
        return [f"{value['resource']}:{value['key']}"]
    if isinstance(value.get("operations"), list):  # a delivery envelope
        return [str(op.get("record") or op.get("key")) for op in value["operations"] if isinstance(op, dict)]
    if isinstance(value.get("record"), str) or "key" in value:  # an operation
        return [str(value.get("record") or value.get("key"))]
    return []


class DeadLetters:
    def __init__(
        self, client: redis.Redis, key_prefix: str, retention_days: float = 30, warning_days: float = 3,
        exceptions: ExceptionRegister | None = None,
    ) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)
        self.retention = retention_days * DAY
        self.warning = warning_days * DAY
        self.exceptions = exceptions

    def _index(self, lane: str) -> str:
        return self.keys.dead_letters(lane)

    def _item(self, entry_id: str) -> str:
        return self.keys.dead_letter(entry_id)

    def add(
        self, task: str, lane: str, kind: str, operations: list[dict[str, Any]], attempts: list[Attempt],
        reason: str,
    ) -> DeadLetter:
        """A delivery envelope's operations that could not be delivered."""
        return self._store(task, lane, kind, operations, attempts, reason, None)

    def add_task(
        self, task: str, lane: str, args: list[Any], attempts: list[Attempt], reason: str, kind: str = "task"
    ) -> DeadLetter:
        """Any other task's message: `bcsync dlq requeue` publishes `task` with `args` on `lane` again."""
        return self._store(task, lane, kind, [], attempts, reason, list(args))

    def _store(
        self, task: str, lane: str, kind: str, operations: list[dict[str, Any]], attempts: list[Attempt],
        reason: str, args: list[Any] | None,
    ) -> DeadLetter:
        now = time.time()
        forever = keeps_until_purged(kind, operations, args)
        entry = DeadLetter(
            id=uuid.uuid4().hex[:12], task=task, lane=lane, kind=kind, operations=operations, attempts=attempts,
            first_failure=attempts[0].at if attempts else now, last_failure=now, reason=reason,
            args=args, refs=describe_args(args) if args is not None else [],
            expires_at=None if forever else now + self.retention,
        )
        pipe = self.client.pipeline()
        pipe.set(self._item(entry.id), entry.model_dump_json())  # no TTL: only sweep or an operator deletes
        pipe.zadd(self._index(lane), {entry.id: now})
        pipe.execute()
        return entry

    def get(self, entry_id: str) -> DeadLetter | None:
        raw = self.client.get(self._item(entry_id))
        return DeadLetter.model_validate_json(raw) if raw else None

    def list(self, lane: str | None = None, code: str | None = None) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        for ln in [lane] if lane else list(LANES):
            ids = self.client.zrange(self._index(ln), 0, -1)
            gone = []
            for entry_id in ids:
                entry = self.get(entry_id)
                if entry is None:
                    gone.append(entry_id)
                elif code is None or entry.code == code:
                    out.append(entry)
            if gone:
                self.client.zrem(self._index(ln), *gone)
        return out

    def remove(self, entry: DeadLetter) -> None:
        """An operator's requeue or purge: the entry goes, and so does its expiry warning."""
        pipe = self.client.pipeline()
        pipe.delete(self._item(entry.id))
        pipe.zrem(self._index(entry.lane), entry.id)
        pipe.execute()
        if self.exceptions is not None:
            self.exceptions.resolve(EXPIRING, record_key(entry.id))

    def count(self, lane: str) -> int:
        return int(self.client.zcard(self._index(lane)))

    def sweep(self, now: float | None = None) -> SweepReport:
        """Warn about entries nearing expiry, delete those past it and warned long enough (module doc), and
        give entries written with a Redis TTL by older code an expiry instead (their TTL goes)."""
        register = self.exceptions
        if register is None:
            raise RuntimeError("DeadLetters.sweep needs the exception register: it never deletes silently")
        now = time.time() if now is None else now
        report = SweepReport()
        for lane in LANES:
            ids = self.client.zrange(self._index(lane), 0, -1)
            for start in range(0, len(ids), SWEEP_BATCH):
                chunk = ids[start:start + SWEEP_BATCH]
                for raw in self.client.mget([self._item(i) for i in chunk]):
                    if raw is not None:
                        self._sweep_one(register, DeadLetter.model_validate_json(raw), now, report)
        return report

    def _sweep_one(self, register: ExceptionRegister, entry: DeadLetter, now: float, report: SweepReport) -> None:
        forever = keeps_until_purged(entry.kind, entry.operations, entry.args)
        if entry.legacy or (forever and entry.expires_at is not None):
            entry.expires_at = None if forever else entry.last_failure + self.retention
            if not self._save(entry):
                return
            report.migrated.append(entry.id)
        step = next_step(entry, now, self.warning)
        if step == "warn":
            assert entry.expires_at is not None
            entry.warned_at, entry.expires_at = now, max(entry.expires_at, now + self.warning)
            register.record(EXPIRING, record_key(entry.id), expiring_reason(entry), "warning", details(entry))
            if self._save(entry):
                report.warned.append(entry.id)
            else:  # an operator removed it meanwhile: nothing left to warn about
                register.resolve(EXPIRING, record_key(entry.id))
        elif step == "delete":
            # recorded before the delete: a crash in between deletes nothing and records again next time
            register.record(EXPIRED, record_key(entry.id), expired_reason(entry, now), "error",
                            details(entry, keep_entry=True))
            pipe = self.client.pipeline()
            pipe.delete(self._item(entry.id))
            pipe.zrem(self._index(entry.lane), entry.id)
            gone, _ = pipe.execute()
            register.resolve(EXPIRING, record_key(entry.id))
            if gone:
                report.deleted.append(entry.id)
            else:  # an operator's requeue or purge got there first
                register.resolve(EXPIRED, record_key(entry.id))

    def _save(self, entry: DeadLetter) -> bool:
        """Write back an entry only while it still exists (an operator may have removed it meanwhile); without
        a TTL (a plain SET drops the one older code gave it)."""
        return bool(self.client.set(self._item(entry.id), entry.model_dump_json(), xx=True))

    def sweep_if_due(self, interval_seconds: float = 300.0, now: float | None = None) -> SweepReport | None:
        """`sweep` at most once per interval across the whole fleet (a Redis gate key): cheap enough to call on
        every tick of every worker's drainer thread. None when another process swept within the interval."""
        if not self.client.set(self.keys.dead_letter_sweep, "1", nx=True, px=max(1, int(interval_seconds * 1000))):
            return None
        return self.sweep(now)
