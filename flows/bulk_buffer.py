"""The order flow's bulk buffers: batch-lane operations wait in Redis and leave in whole bulk jobs.

Klaviyo's limiter counts jobs, not rows, so a job of 240 events costs as much budget as one of 1,000. A
buffer therefore ships only whole chunks at the endpoint's maximum (`SENDERS[kind].batch_size`: 1,000 events
per event bulk job, 10,000 profiles per bulk import; the packing still cuts a chunk at Klaviyo's 5 MB request
limit) and holds the tail until more arrive or it has waited `bulk_max_wait_seconds`. Each kind has its own
list (`state.buffers.kind_buffers`) so the ERP aggregates' profile upserts never cut an event job short.

Nothing waits forever and nothing is lost: the buffer is Redis itself, a chunk is claimed atomically (whole or
not at all: `ClaimStore.claim_list(whole=True)`), submitted, then deleted (`state/claims.py`: a flush that dies
in between puts its claim back); a flush that leaves a young tail schedules the next flush for when the tail
reaches the age bound (the delayed schedule, in Redis), and beat's `flush-order-bulk` flushes aged tails of
both order buffers every few seconds in case that schedule was missed (a process killed between the two).
A tail's age counts from when its buffer last became non-empty, restarted each time a whole chunk leaves
ahead of it (it is then at most that old), so an operation waits at most the age bound past the last chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from delivery.registry import SENDERS
from state.buffers import kind_buffer, kind_buffers
from state.claims import ClaimStore
from state.keys import RedisKeys
from sync.operations import Operation

Submit = Callable[[list[Operation]], Any]
MIN_RESCHEDULE_SECONDS = 0.2  # a tail due now is flushed again this soon at the earliest


@dataclass
class BulkBuffer:
    """One order bulk buffer (`key`: the events' list; the other kinds' lists are named after it)."""

    redis: redis.Redis
    key_prefix: str
    key: str
    submit: Submit
    max_wait_seconds: float
    schedule_flush: Callable[[float], None] | None = None  # a flush at this epoch time (the delayed schedule)

    @property
    def claims(self) -> ClaimStore:
        return ClaimStore(self.redis, self.key_prefix)

    @property
    def due_key(self) -> str:
        return f"{self.key}:flush-due"

    def push(self, ops: Iterable[Operation]) -> int:
        """Append operations to their kinds' lists; ships whole chunks at once, schedules a flush for a
        tail. Returns the operations submitted now."""
        by_kind: dict[str, list[str]] = {}
        for op in ops:
            by_kind.setdefault(kind_buffer(self.key, op.kind), []).append(op.model_dump_json())
        full = False
        for key, raws in by_kind.items():
            size = self.claims.push(key, raws)
            full = full or size >= chunk_size(self.key, key)
        sent = self.flush_whole() if full else 0
        if any(self.redis.llen(key) for key in by_kind):
            self._schedule_once(time.time() + self.max_wait_seconds)
        return sent

    def flush_whole(self) -> int:
        """Ship every whole chunk held; the tails stay."""
        sent = 0
        claims = self.claims
        for key in kind_buffers(self.key).values():
            size = chunk_size(self.key, key)
            while (claim := claims.claim_list(key, size, whole=True)) is not None:
                sent += self._ship(claims, claim)
        return sent

    def flush(self, *, drain: bool = False, now: float | None = None) -> int:
        """Ship whole chunks, and the tails that reached the age bound (every tail when `drain`: the end of
        a backfill); a younger tail gets a flush scheduled for when it is due. Returns operations submitted."""
        claims = self.claims
        claims.reclaim_stale()
        # forgotten before the lists are read: an operation pushed from here on schedules its own flush
        self.redis.delete(self.due_key)
        sent = self.flush_whole()
        now = time.time() if now is None else now
        waiting: list[float] = []
        for key in kind_buffers(self.key).values():
            if not self.redis.llen(key):
                continue
            raw = self.redis.get(RedisKeys.buffer_since(key))
            since = float(raw) if raw else None  # None: written before ages were kept - not worth waiting for
            if drain or since is None or now - since >= self.max_wait_seconds:
                size = chunk_size(self.key, key)
                while (claim := claims.claim_list(key, size)) is not None:
                    sent += self._ship(claims, claim)
            else:
                waiting.append(since + self.max_wait_seconds)
        if waiting:
            self._schedule_once(max(min(waiting), now + MIN_RESCHEDULE_SECONDS))
        return sent

    def _ship(self, claims: ClaimStore, claim: Any) -> int:
        with claims.publishing(claim):
            self.submit([Operation.from_json(raw) for raw in claim.values])
        return len(claim)

    def _schedule_once(self, at: float) -> None:
        """One scheduled flush at a time per buffer (the key expires well after it was due, so a flush lost
        with its process does not keep the next one from being scheduled; beat covers the gap)."""
        if self.schedule_flush is None:
            return
        hold = max(1, int(at - time.time() + self.max_wait_seconds * 2 + 5))
        if self.redis.set(self.due_key, "1", nx=True, ex=hold):
            self.schedule_flush(at)


def chunk_size(buffer: str, key: str) -> int:
    """The whole chunk of a buffer's list: the bulk endpoint's maximum rows of the kind it holds."""
    kind = next((kind for kind, k in kind_buffers(buffer).items() if k == key), "event")
    return SENDERS[kind].batch_size
