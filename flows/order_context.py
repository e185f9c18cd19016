"""What the order flow touches (`OrderContext`), apart from the flow, so the modules the flow calls can name it
without importing the flow (no import cycle)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from config.mapping import Mapping
from flows.bulk_buffer import BulkBuffer
from flows.order_refunds import RecoverRefunds
from state.exceptions import ExceptionRegister
from state.keys import RedisKeys
from state.ledger import Ledger
from state.order_facts import OrderFactsStore
from state.orders import RedisOrderState
from sync.operations import Operation

Submit = Callable[[list[Operation]], Any]


@dataclass
class OrderContext:
    """What the order flow touches; tests and the backfill build one over their own Redis."""

    redis: redis.Redis
    key_prefix: str
    mapping: Mapping
    state: RedisOrderState
    ledger: Ledger
    exceptions: ExceptionRegister
    submit: Submit
    schedule_flush: Callable[[float], None] | None = None  # a bulk buffer flush at this epoch time
    buffer: str | None = None  # Redis list of batch-lane operations awaiting a bulk job (default: the flow's)
    bulk_max_wait_seconds: float = 5.0  # a bulk buffer's tail ships once this old (Settings.bulk_max_wait_seconds)
    lock_seconds: float = 30.0  # one computation per order at a time: the lock's TTL (flows.order_locking)
    lock_wait_seconds: float = 5.0  # longest wait for an order's lock before it is synced again later
    recover_refunds: RecoverRefunds | None = None  # refund ids from Klaviyo when the fleet has none of an order

    @property
    def bulk_buffer(self) -> str:
        return self.buffer or RedisKeys(self.key_prefix).order_bulk_buffer

    @property
    def bulk(self) -> BulkBuffer:
        return BulkBuffer(self.redis, self.key_prefix, self.bulk_buffer, self.submit, self.bulk_max_wait_seconds,
                          self.schedule_flush)

    @property
    def facts(self) -> OrderFactsStore:
        return OrderFactsStore(self.redis, self.key_prefix)
