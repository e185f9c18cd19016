"""How the poller's cycles of each resource are going, for `bcsync status`: read errors and held-back watermarks.

Redis hash ``<prefix>:poller:health``: resource -> JSON `ResourceHealth`, written by the active poller at the end of
every cycle of the resource (one poller at a time holds the lock: no two writers), with the end of its last
successful read (`ok_at`: the freshness check's "last successful read"). A read error (404, refused key,
a body not the documented shape, Blue Cherry unavailable after its retries, a bug) is kept with the time the
failures began and how many cycles in a row failed; a cycle that reads again clears it. `held` counts the cycles
in a row that ended with the watermark behind the newest change read (the window still moving) or not moved at
all because the read failed; a cycle that takes the watermark to the newest change it read resets it.
"""

from __future__ import annotations

import time

import redis
from pydantic import BaseModel

from state.keys import RedisKeys


class ResourceHealth(BaseModel):
    at: float  # when the last cycle ended
    ok_at: float | None = None  # when the last cycle that read without an error ended (freshness: its age)
    error: str | None = None  # the last cycle's read error, if it failed
    error_kind: str | None = None  # not_found | auth | response | unavailable | bug
    failing_since: float | None = None  # when the failures in a row began
    failures: int = 0  # cycles in a row that failed
    held: int = 0  # cycles in a row whose watermark stayed behind
    records: int = 0  # records read by the last cycle
    invalid: int = 0  # of them, invalid (each an exception)


class PollerHealth:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.key = RedisKeys(key_prefix).poller_health

    def get(self, resource: str) -> ResourceHealth | None:
        raw = self.client.hget(self.key, resource)
        return ResourceHealth.model_validate_json(raw) if raw else None

    def all(self) -> dict[str, ResourceHealth]:
        held = self.client.hgetall(self.key)
        return {str(name): ResourceHealth.model_validate_json(raw) for name, raw in held.items()}

    def cycle(self, resource: str, *, held: bool, records: int = 0, invalid: int = 0, error: str | None = None,
              error_kind: str | None = None, now: float | None = None) -> ResourceHealth:
        """Note one cycle of `resource`; returns what is kept."""
        now = time.time() if now is None else now
        before = self.get(resource)
        failed = error is not None
        health = ResourceHealth(
            at=now, error=error, error_kind=error_kind, ok_at=(before.ok_at if before else None) if failed else now,
            failing_since=((before.failing_since if before and before.failures else None) or now) if failed else None,
            failures=(before.failures if before else 0) + 1 if failed else 0,
            held=(before.held if before else 0) + 1 if held else 0,
            records=records, invalid=invalid,
        )
        self.client.hset(self.key, resource, health.model_dump_json())
        return health
