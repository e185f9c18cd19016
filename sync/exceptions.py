"""An exception record: one data problem, with an owner team, for operators (kept by
`state.exceptions.ExceptionRegister`)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

Severity = Literal["info", "warning", "error", "critical"]
# acknowledged: someone is on it (kept as acknowledged when seen again); resolved: reopened when seen again
Status = Literal["open", "acknowledged", "resolved"]


class ExceptionRecord(BaseModel):
    type: str
    owner: str
    severity: Severity
    record_key: str
    reason: str
    first_seen: float
    last_seen: float
    count: int
    status: Status = "open"
    details: dict[str, Any] = {}
    # who acknowledged or resolved it, when and why (the console): {"at", "by", "action", "comment"}, oldest first
    notes: list[dict[str, Any]] = []

    @property
    def id(self) -> str:
        return f"{self.type}|{self.record_key}"


def dump(records: list[ExceptionRecord]) -> str:
    return json.dumps([r.model_dump() | {"id": r.id} for r in records], indent=2)
