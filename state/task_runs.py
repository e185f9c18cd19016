"""Per-message run records: how often a task message started, how often it failed, and on which lane.

A message that kills its worker (a poison message) is redelivered by `task_reject_on_worker_lost` without
ever reaching our error handling, so only a count kept outside the process can stop it: every start is
counted before the task body runs and the record is forgotten once the message is durably done or handed on.
Failures are counted under the same message id: a task retried through the delayed-retry schedule is
republished with its id, so its attempts add up across retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from state.keys import RedisKeys

# the message id of the task running in this context whose run record is still to be forgotten: the task body's
# own last pipeline forgets it on the way (`forget_current`), which saves the hot path a round trip
current_run: ContextVar[str | None] = ContextVar("bcsync_current_task_run", default=None)

# a start: counted, the first start kept, the task and lane named, the record's expiry pushed on
_STARTED = """
local starts = redis.call('HINCRBY', KEYS[1], 'starts', 1)
redis.call('HSETNX', KEYS[1], 'first_start', ARGV[1])
redis.call('HSET', KEYS[1], 'task', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'lane', ARGV[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return starts
"""
T = TypeVar("T")
RECORD_TTL_SECONDS = 14 * 86400  # outlives any backoff; a forgotten record expires instead of lingering
ATTEMPTS_KEPT = 10


@dataclass(frozen=True)
class TaskRun:
    starts: int
    failures: int
    lane: str | None
    task: str | None
    first_start: float | None


class TaskRuns:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.keys = RedisKeys(key_prefix)

    def started(self, message_id: str, task: str, lane: str | None, now: float | None = None) -> int:
        """Count one start of a message; returns the starts not yet matched by an end (this one included)."""
        starts, _, _ = self.started_reading(message_id, task, lane, lambda pipe: None, now)
        return starts

    def started_reading(self, message_id: str, task: str, lane: str | None, queue_reads: Callable[[Any], T],
                        now: float | None = None) -> tuple[int, T, list[Any]]:
        """`started`, with the reads `queue_reads` adds to the same pipeline after it: the start is counted
        first (a pipeline runs in order), and a task whose body begins with those reads saves their round trip.
        Returns the starts, what `queue_reads` returned and the reads' answers. Every task message makes this
        call before its body runs. EVAL, not a registered script: in a pipeline redis-py would ask SCRIPT EXISTS
        first."""
        pipe = self.client.pipeline(transaction=False)
        pipe.eval(_STARTED, 1, self.keys.task_run(message_id), now or time.time(), task, lane or "",
                  RECORD_TTL_SECONDS)
        queued = queue_reads(pipe)
        starts, *reads = pipe.execute()
        return int(starts), queued, reads

    def ended(self, message_id: str) -> None:
        """The run finished in our hands (done, retried or dead-lettered): it was no crash."""
        self.client.hset(self.keys.task_run(message_id), "starts", 0)

    def failed(self, message_id: str, attempt: str) -> int:
        """Count one failure and keep its record (JSON; the newest `ATTEMPTS_KEPT`); returns failures so far."""
        key = self.keys.task_run(message_id)
        pipe = self.client.pipeline()
        pipe.hincrby(key, "failures", 1)
        pipe.rpush(self.keys.task_run_attempts(message_id), attempt)
        pipe.ltrim(self.keys.task_run_attempts(message_id), -ATTEMPTS_KEPT, -1)
        pipe.expire(self.keys.task_run_attempts(message_id), RECORD_TTL_SECONDS)
        pipe.expire(key, RECORD_TTL_SECONDS)
        return int(pipe.execute()[0])

    def attempts(self, message_id: str) -> list[str]:
        return list(self.client.lrange(self.keys.task_run_attempts(message_id), 0, -1))

    def get(self, message_id: str) -> TaskRun | None:
        raw = self.client.hgetall(self.keys.task_run(message_id))
        if not raw:
            return None
        return TaskRun(starts=int(raw.get("starts", 0)), failures=int(raw.get("failures", 0)),
                       lane=raw.get("lane"), task=raw.get("task"),
                       first_start=float(raw["first_start"]) if raw.get("first_start") else None)

    def forget(self, message_id: str, client: Any = None) -> None:
        (client or self.client).delete(self.keys.task_run(message_id), self.keys.task_run_attempts(message_id))

    def forget_current(self, client: Any) -> None:
        """Queue the running task's forget on `client` (the body's last pipeline once its work is durably done):
        the task base then has nothing left to forget. A crash after it only loses the start count of a
        message whose work the ledger already holds (its rerun skips it)."""
        message_id = current_run.get()
        if message_id is not None:
            self.forget(message_id, client)
            current_run.set(None)
