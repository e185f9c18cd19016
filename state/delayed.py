"""The delayed-retry schedule: messages that must wait longer than a burst window wait here, in Redis.

Celery countdown/ETA messages sit unacknowledged in a worker's memory and, on Redis, return only after the
visibility timeout if that worker dies. A Sorted Set scored by due time keeps memory in Redis, survives any
worker, and is drained back into the lanes when due (Sentry's webhook outbox does the same).

Draining is crash-safe: a Lua script moves due entries to an in-flight set with a claim time; the drainer
publishes them and only then deletes them. Entries claimed by a drainer that died are reclaimed after
``RECLAIM_AFTER`` seconds, so a crash can repeat a publish (harmless: deliveries are idempotent) but never
lose one.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Protocol

import redis

from state.keys import RedisKeys

RECLAIM_AFTER = 30.0


class Publish(Protocol):
    def __call__(self, task: str, args: list[Any], queue: str, *, task_id: str | None = None) -> None: ...

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[1], id)
end
return due
"""

_RECLAIM = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], 0, id)
end
return #stale
"""

# Delete a published entry's body only if it is still the body that was published: the same id may have been
# added again meanwhile (an envelope keeps its id when the worker that took it reschedules it).
_DONE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


class DelayedSchedule:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        keys = RedisKeys(key_prefix)
        self.due_key = keys.delayed_due
        self.inflight_key = keys.delayed_inflight
        self.payload_key = keys.delayed_payload
        self._claim = client.register_script(_CLAIM)
        self._reclaim = client.register_script(_RECLAIM)
        self._done = client.register_script(_DONE)

    def add(
        self, task: str, args: list[Any], queue: str, due: float, entry_id: str | None = None,
        task_id: str | None = None,
    ) -> str:
        """Schedule a task message; `task_id` republishes it under the id of the message it retries, so its
        failures keep adding up (state.task_runs)."""
        entry_id = entry_id or uuid.uuid4().hex
        # the token makes every add's body unique, so a re-add of the same id is told apart from the original
        fields: dict[str, Any] = {"task": task, "args": args, "queue": queue, "token": uuid.uuid4().hex}
        if task_id:
            fields["task_id"] = task_id
        body = json.dumps(fields)
        pipe = self.client.pipeline()
        pipe.hset(self.payload_key, entry_id, body)
        pipe.zadd(self.due_key, {entry_id: due})
        pipe.execute()
        return entry_id

    def drain(self, publish: Publish, limit: int = 500) -> int:
        """Publish every entry that is due (up to ``limit``); returns how many were published."""
        now = time.time()
        self._reclaim(keys=[self.due_key, self.inflight_key], args=[now - RECLAIM_AFTER])
        ids = self._claim(keys=[self.due_key, self.inflight_key], args=[now, limit])
        published = 0
        for entry_id in ids:
            raw = self.client.hget(self.payload_key, entry_id)
            if raw is None:  # already published by a drainer that died after deleting
                self.client.zrem(self.inflight_key, entry_id)
                continue
            body = json.loads(raw)
            if body.get("task_id"):
                publish(body["task"], body["args"], body["queue"], task_id=body["task_id"])
            else:
                publish(body["task"], body["args"], body["queue"])
            self._done(keys=[self.payload_key, self.inflight_key], args=[entry_id, raw])
            published += 1
        return published

    def hasten(self, entry_ids: list[str], due: float) -> int:
        """Bring scheduled entries forward to `due` (never back); ids not (or no longer) scheduled are left out.
        Returns how many moved."""
        if not entry_ids:
            return 0
        return int(self.client.zadd(self.due_key, {entry_id: due for entry_id in entry_ids}, xx=True, lt=True,
                                    ch=True))

    def pending(self) -> int:
        return int(self.client.zcard(self.due_key)) + int(self.client.zcard(self.inflight_key))

    def counts(self) -> dict[str, int]:
        """Entries waiting for their due time ("due") and claimed by a drainer, being published ("claimed")."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.due_key)
        pipe.zcard(self.inflight_key)
        due, claimed = pipe.execute()
        return {"due": int(due), "claimed": int(claimed)}

    def overdue(self, now: float, limit: int = 1000) -> dict[str, float]:
        """Lane -> seconds its most overdue entry is past its due time, over the `limit` most overdue entries
        (a lane with none there is as good as on time). A drainer runs in every worker: an entry long overdue
        means none runs, or publishing fails."""
        first = self.client.zrangebyscore(self.due_key, "-inf", now, start=0, num=limit, withscores=True)
        if not first:
            return {}
        bodies = self.client.hmget(self.payload_key, [entry_id for entry_id, _ in first])
        out: dict[str, float] = {}
        for (_, due), raw in zip(first, bodies, strict=True):
            try:
                lane = str(json.loads(raw)["queue"]) if raw else "?"
            except (ValueError, KeyError, TypeError):
                lane = "?"
            if lane not in out:  # ordered by due time: the first of a lane is its most overdue
                out[lane] = round(max(0.0, now - float(due)), 3)
        return out

    def next_due(self) -> float | None:
        first = self.client.zrange(self.due_key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None
