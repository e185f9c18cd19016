"""Dead-letter queues, one per lane, in Redis: nothing that failed is ever dropped silently.

An entry keeps the task, the operations (payload), the lane, every attempt (time, HTTP status, Klaviyo's
error id/code/detail/pointer) and the first and last failure. Entries expire after the retention
(``dead_letter_ttl_days``); the per-lane index is pruned lazily.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis
from pydantic import BaseModel, Field

from config.lanes import LANES
from state.keys import RedisKeys


class Attempt(BaseModel):
    at: float
    status: int | None = None
    endpoint: str | None = None
    error: str
    errors: list[dict[str, Any]] = Field(default_factory=list)  # Klaviyo's error objects


class DeadLetter(BaseModel):
    id: str
    task: str
    lane: str
    kind: str
    operations: list[dict[str, Any]]
    attempts: list[Attempt]
    first_failure: float
    last_failure: float
    reason: str

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
        return [str(op.get("record") or op.get("key")) for op in self.operations]


class DeadLetters:
    def __init__(self, client: redis.Redis, key_prefix: str, ttl_days: int = 30) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)
        self.ttl = int(ttl_days * 86400)

    def _index(self, lane: str) -> str:
        return self.keys.dead_letters(lane)

    def _item(self, entry_id: str) -> str:
        return self.keys.dead_letter(entry_id)

    def add(
        self, task: str, lane: str, kind: str, operations: list[dict[str, Any]], attempts: list[Attempt],
        reason: str,
    ) -> DeadLetter:
        now = time.time()
        entry = DeadLetter(
            id=uuid.uuid4().hex[:12], task=task, lane=lane, kind=kind, operations=operations, attempts=attempts,
            first_failure=attempts[0].at if attempts else now, last_failure=now, reason=reason,
        )
        pipe = self.client.pipeline()
        pipe.set(self._item(entry.id), entry.model_dump_json(), ex=self.ttl)
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
        pipe = self.client.pipeline()
        pipe.delete(self._item(entry.id))
        pipe.zrem(self._index(entry.lane), entry.id)
        pipe.execute()

    def count(self, lane: str) -> int:
        return int(self.client.zcard(self._index(lane)))
