"""The exception register: one record per data problem, with an owner team, for operators.

De-duplicated by (type, record key): a problem seen again bumps `count` and `last_seen` instead of adding a
row. Each record expires after the retention (``exception_ttl_days``); the index is pruned lazily.
`details["examples"]` accumulates instead of being replaced: the first `sync.misfits.MAX_EXAMPLES` distinct
examples stay (one row for a mapping problem that fails thousands of records, with a few of them named).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from config.mapping import ExceptionOwners
from state.keys import RedisKeys
from sync.exceptions import ExceptionRecord, Severity, Status
from sync.misfits import merged_examples
from sync.record_keys import clean_record_key


class ExceptionRegister:
    def __init__(
        self, client: redis.Redis, key_prefix: str, owners: ExceptionOwners, ttl_days: int = 90
    ) -> None:
        self.client = client
        self.owners = owners
        self.ttl = int(ttl_days * 86400)
        keys = RedisKeys(key_prefix)
        self.index = keys.exceptions
        self.item_prefix = keys.exception("")

    def record(
        self,
        type: str,
        record_key: str,
        reason: str,
        severity: Severity = "error",
        details: dict[str, Any] | None = None,
    ) -> ExceptionRecord:
        now = time.time()
        record_key = clean_record_key(record_key)  # padded and unpadded ERP codes are one record
        if details and "examples" in details:
            details = {**details, "examples": merged_examples([], details["examples"])}
        ident = f"{type}|{record_key}"
        key = self.item_prefix + ident
        raw = self.client.get(key)
        if raw:
            rec = ExceptionRecord.model_validate_json(raw)
            rec.count += 1
            rec.last_seen = now
            rec.reason = reason
            rec.severity = severity
            if rec.status == "resolved":  # back again: reopened; an acknowledged one stays in its owner's hands
                rec.status = "open"
            if details:
                examples = merged_examples(rec.details.get("examples", []), details.get("examples", []))
                rec.details = {**details, "examples": examples} if examples else details
        else:
            rec = ExceptionRecord(
                type=type, owner=self.owners.owner_of(type), severity=severity, record_key=record_key,
                reason=reason, first_seen=now, last_seen=now, count=1, details=details or {},
            )
        pipe = self.client.pipeline()
        pipe.set(key, rec.model_dump_json(), ex=self.ttl)
        pipe.zadd(self.index, {ident: now})
        pipe.execute()
        return rec

    def resolve(self, type: str, record_key: str, by: str | None = None, comment: str = "") -> bool:
        return self._set_status(type, record_key, "resolved", by, comment)

    def acknowledge(self, type: str, record_key: str, by: str, comment: str = "") -> bool:
        """Someone is on it: kept with who, when and their comment; a resolve or a new sighting comes later."""
        return self._set_status(type, record_key, "acknowledged", by, comment)

    def _set_status(self, type: str, record_key: str, status: Status, by: str | None, comment: str) -> bool:
        key = self.item_prefix + f"{type}|{clean_record_key(record_key)}"
        raw = self.client.get(key)
        if not raw:
            return False
        rec = ExceptionRecord.model_validate_json(raw)
        rec.status = status
        if by is not None:  # a person's action is kept on the record; the fleet's own resolves are not notes
            rec.notes = [*rec.notes, {"at": time.time(), "by": by, "action": status, "comment": comment}]
        self.client.set(key, rec.model_dump_json(), ex=self.ttl)
        return True

    def get(self, type: str, record_key: str) -> ExceptionRecord | None:
        raw = self.client.get(self.item_prefix + f"{type}|{clean_record_key(record_key)}")
        return ExceptionRecord.model_validate_json(raw) if raw else None

    def list(
        self, owner: str | None = None, type: str | None = None, status: str | None = "open", limit: int = 1000
    ) -> list[ExceptionRecord]:
        idents = self.client.zrevrange(self.index, 0, -1)
        out: list[ExceptionRecord] = []
        expired: list[str] = []
        for ident in idents:
            raw = self.client.get(self.item_prefix + ident)
            if raw is None:
                expired.append(ident)
                continue
            rec = ExceptionRecord.model_validate_json(raw)
            if owner and rec.owner != owner or type and rec.type != type or status and rec.status != status:
                continue
            out.append(rec)
            if len(out) >= limit:
                break
        if expired:
            self.client.zrem(self.index, *expired)
        return out

    def counts(self) -> dict[str, int]:
        by: dict[str, int] = {}
        for rec in self.list(limit=10**9):
            by[f"{rec.owner}/{rec.type}"] = by.get(f"{rec.owner}/{rec.type}", 0) + 1
        return by


