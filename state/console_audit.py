"""The console's audit log: every change made in `bcsync console` (who, when, what, on which records), in Redis.

A capped list, newest first (`<prefix>:console:audit`, at most `MAX_ENTRIES`): an acknowledge, a resolve, a
requeue or a purge is written before its result is shown, so the log never misses a change it reports.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from state.keys import RedisKeys

MAX_ENTRIES = 100_000  # years of operator actions; a few tens of MB at most


class ConsoleAuditLog:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.key = RedisKeys(key_prefix).console_audit

    def write(self, user: str, role: str, action: str, target: str, detail: str = "",
              now: float | None = None) -> dict[str, Any]:
        entry = {"at": time.time() if now is None else now, "user": user, "role": role, "action": action,
                 "target": target, "detail": detail}
        pipe = self.client.pipeline()
        pipe.lpush(self.key, json.dumps(entry))
        pipe.ltrim(self.key, 0, MAX_ENTRIES - 1)
        pipe.execute()
        return entry

    def recent(self, limit: int = 200) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(self.key, 0, limit - 1)]
