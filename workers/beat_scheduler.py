"""RedBeat that outlives Redis outages and restarts (`config/celery.py` names it as beat's scheduler).

Stock RedBeat ends beat at the first Redis blip: the lock extension at the top of `tick` raises a connection
error while Redis is away, or `LockNotOwnedError` once a Redis that keeps nothing on disk is back empty, and
beat exits. The one-second `flush-stock` entry is the only thing that sends debounced stock figures, so
stock would stop silently. This scheduler instead, on every tick:

- on a Redis connection or timeout error logs it and tries again after a backoff (doubling, capped at
  `BACKOFF_CAP` seconds), never exiting;
- holds the lock or takes it again (a lost lock - expired, or wiped by a restart - is re-acquired without
  blocking; when another beat took it meanwhile this one waits as a standby, as RedBeat's does);
- re-creates the static entries of `app.conf.beat_schedule` (RedBeat's `setup_schedule`) after taking the
  lock and whenever they are gone from Redis;
- records its heartbeat (`state.beat.BeatHeartbeat`) once the due entries were sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from celery.utils.log import get_logger
from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, RedBeatScheduler, get_redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.lock import Lock

from config.settings import get_settings
from state.beat import BeatHeartbeat

logger = get_logger("celery.beat")

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
BACKOFF_FIRST = 0.5  # seconds before the first retry after a failed tick
BACKOFF_CAP = 4.0  # never longer between two attempts: flush-stock resumes within seconds of Redis


def backoff(failures: int) -> float:
    """Seconds to wait after `failures` failed ticks in a row (>= 1)."""
    return float(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(0, failures - 1)))


class ResilientRedBeatScheduler(RedBeatScheduler):
    lock: Lock | None = None
    # class-level defaults: RedBeat's __init__ calls setup_schedule before ours runs
    _failures = 0
    _standby = False

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        prefix = app.conf.get("bcsync_key_prefix") or get_settings().key_prefix
        self.heartbeat = BeatHeartbeat(get_redis(app), prefix)

    def setup_schedule(self) -> None:
        # Beat may start while Redis is away: the first tick that reaches Redis installs the entries.
        try:
            super().setup_schedule()
        except REDIS_DOWN as exc:
            logger.warning("beat: Redis unreachable while installing the schedule (%s); retrying on tick", exc)

    def tick(self, min: Callable[..., float] = min, **kwargs: Any) -> float:  # noqa: A002  Celery's signature
        try:
            interval = self._tick(min)
        except REDIS_DOWN as exc:
            self._failures += 1
            delay = backoff(self._failures)
            logger.warning("beat: Redis unreachable (%s: %s); attempt %d failed, retrying in %.1fs",
                           type(exc).__name__, exc, self._failures, delay)
            return delay
        if self._failures:
            logger.info("beat: Redis answers again after %d failed attempt(s)", self._failures)
            self._failures = 0
        return interval

    def _tick(self, min: Callable[..., float]) -> float:  # noqa: A002
        if self.lock_key and not self._hold_lock():
            return float(self.max_interval)  # standby: try the lock again next loop
        if self._schedule_missing():
            logger.warning("beat: The schedule's entries are gone from Redis; installing them again")
            super().setup_schedule()  # unguarded: a Redis error here is the tick's to retry
        interval = self._send_due(min)
        self.heartbeat.tick(time.time())
        return interval

    def _hold_lock(self) -> bool:
        """Extend the lock we hold, or take it if free; False while another beat holds it."""
        if self.lock is not None:
            try:
                self.lock.extend(int(self.lock_timeout))
                return True
            except LockError:  # LockNotOwnedError: its token is gone (expired, or Redis restarted empty)
                logger.warning("beat: Lost the lock (expired, or Redis restarted empty); taking it again")
                self.lock = None
        lock = self._new_lock()
        if not lock.acquire(blocking=False):
            if not self._standby:
                logger.info("beat: Another beat holds the lock; waiting as a standby")
                self._standby = True
            return False
        self._standby = False
        logger.info("beat: Acquired lock")
        self.lock = lock
        # the entries may have been wiped with the lock, or left behind by another beat's configuration
        super().setup_schedule()
        return True

    def _new_lock(self) -> Lock:
        """The lock as RedBeat's beat_init handler makes it (its extend sets the TTL rather than adding)."""
        client = get_redis(self.app)
        lock: Lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)  # type: ignore[misc]  # as RedBeat does
        return lock

    def _schedule_missing(self) -> bool:
        conf = self.app.redbeat_conf
        return bool(conf.schedule) and not get_redis(self.app).exists(conf.statics_key)

    def _send_due(self, min: Callable[..., float]) -> float:  # noqa: A002
        # RedBeatScheduler.tick without its lock extension (done by _hold_lock)
        remaining: list[float] = []
        try:
            for entry in self.schedule.values():
                next_time_to_run = self.maybe_due(entry, **self._maybe_due_kwargs)
                if next_time_to_run:
                    remaining.append(next_time_to_run)
        except RuntimeError:
            logger.debug("beat: RuntimeError", exc_info=True)
        return float(min([*remaining, self.max_interval]))

    def close(self) -> None:
        try:
            super().close()
        except (*REDIS_DOWN, LockError) as exc:
            # the lock expires by itself within its timeout; a standby takes over then
            logger.warning("beat: Could not release the lock (%s)", exc)
            self.lock = None
            super().close()  # without a lock: only Celery's own cleanup
