"""One place builds the fleet's state stores from `Settings`: every process gets them from here, once.

`Stores` holds one Redis connection and builds each store on first use, with the retention the settings
give it. `stores()` is the process's own (rebuilt after a fork: a connection pool must not cross one).
"""

from __future__ import annotations

import os
from functools import cached_property

import redis

from config.mapping import Mapping, get_mapping
from config.redis import redis_client
from config.settings import Settings, get_settings
from state.consent_jobs import ConsentJobs
from state.daily_batch import DailyBatchStore
from state.dead_letters import DeadLetters
from state.delayed import DelayedSchedule
from state.erasure import ErasureTombstones
from state.exceptions import ExceptionRegister
from state.fingerprints import FingerprintStore
from state.inflight import InFlight
from state.keys import RedisKeys
from state.lane_stats import LaneStats
from state.ledger import Ledger
from state.orders import RedisOrderState
from state.outage import KlaviyoOutage
from state.profiles import ProfileStore
from state.stock import StockState
from state.stock_scans import StockScans
from state.task_runs import TaskRuns
from state.watermarks import WatermarkStore


class Stores:
    def __init__(self, settings: Settings, mapping: Mapping, client: redis.Redis) -> None:
        self.settings = settings
        self.mapping = mapping
        self.redis = client
        self.keys = RedisKeys(settings.key_prefix)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.settings.key_prefix, self.settings.ledger_ttl_days)

    @cached_property
    def dead_letters(self) -> DeadLetters:
        s = self.settings
        return DeadLetters(
            self.redis, s.key_prefix, s.dead_letter_ttl_days, s.dead_letter_expiry_warning_days, self.exceptions
        )

    @cached_property
    def delayed(self) -> DelayedSchedule:
        return DelayedSchedule(self.redis, self.settings.key_prefix)

    @cached_property
    def exceptions(self) -> ExceptionRegister:
        s = self.settings
        return ExceptionRegister(self.redis, s.key_prefix, self.mapping.owners, s.exception_ttl_days)

    @cached_property
    def task_runs(self) -> TaskRuns:
        return TaskRuns(self.redis, self.settings.key_prefix)

    @cached_property
    def outage(self) -> KlaviyoOutage:
        return KlaviyoOutage(self.redis, self.settings.key_prefix, self.keys.delayed_due)

    @cached_property
    def inflight(self) -> InFlight:
        return InFlight(self.redis, self.settings.key_prefix, self.settings.inflight_stale_seconds)

    @cached_property
    def lane_stats(self) -> LaneStats:
        return LaneStats(self.redis, self.settings.key_prefix, self.settings.latency_samples)

    @cached_property
    def fingerprints(self) -> FingerprintStore:
        return FingerprintStore(self.redis, self.settings.key_prefix, self.settings.fingerprint_ttl_days)

    @cached_property
    def watermarks(self) -> WatermarkStore:
        return WatermarkStore(self.redis, self.settings.key_prefix)

    @cached_property
    def daily_batch(self) -> DailyBatchStore:
        return DailyBatchStore(self.redis, self.settings.key_prefix)

    @cached_property
    def profiles(self) -> ProfileStore:
        return ProfileStore(self.redis, self.settings.key_prefix)

    @cached_property
    def consent_jobs(self) -> ConsentJobs:
        s = self.settings
        # a claim outlives any one send (the task's hard limit); a sent job outlives its bound, so only a check
        # lost with its state (not a slow one) frees the key by expiry
        return ConsentJobs(self.redis, s.key_prefix, claim_ttl=2.0 * s.task_time_limit_seconds,
                           sent_ttl=2.0 * s.consent_confirm_seconds + 60.0)

    @cached_property
    def erasures(self) -> ErasureTombstones:
        return ErasureTombstones(self.redis, self.settings.key_prefix)

    @cached_property
    def orders(self) -> RedisOrderState:
        s = self.settings
        return RedisOrderState(self.redis, s.key_prefix, self.mapping, s.order_document_grace_days)

    @cached_property
    def stock(self) -> StockState:
        return StockState(self.redis, self.settings.key_prefix, self.settings.ledger_ttl_days)

    @cached_property
    def stock_scans(self) -> StockScans:
        return StockScans(self.redis, self.settings.key_prefix)


def build_stores(
    settings: Settings | None = None, mapping: Mapping | None = None, client: redis.Redis | None = None
) -> Stores:
    settings = settings or get_settings()
    return Stores(settings, mapping or get_mapping(), client or redis_client(settings.redis_url))


_stores: tuple[int, Stores] | None = None


def stores() -> Stores:
    """This process's stores (built on first use, and again in a forked child)."""
    global _stores
    if _stores is None or _stores[0] != os.getpid():
        _stores = (os.getpid(), build_stores())
    return _stores[1]


def reset_stores() -> None:
    """Forget this process's stores (tests and commands that change settings mid-process)."""
    global _stores
    _stores = None
