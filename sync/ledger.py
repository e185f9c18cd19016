"""What a ledger entry holds (the store itself is `state.ledger.Ledger`): one delivered operation, when,
with which response - only ids kept, the ledger is an audit trail, not a copy of profiles."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel


class LedgerEntry(BaseModel):
    key: str
    delivered_at: float
    status: int | None
    endpoint: str
    version: str | None = None
    record: str | None = None
    response: dict[str, Any] | None = None
    repair: bool = False  # delivered by a reconciliation repair (`bcsync reconcile --repair`)


def now() -> float:
    return time.time()


def summarize_response(data: Any) -> dict[str, Any] | None:
    """Keep only ids from Klaviyo's answer: the ledger is an audit trail, not a copy of profiles."""
    if not isinstance(data, dict):
        return None
    inner = data.get("data")
    if isinstance(inner, dict):
        return {"id": inner.get("id"), "type": inner.get("type")}
    return json.loads(json.dumps({k: v for k, v in data.items() if k in ("id", "type")})) or None
