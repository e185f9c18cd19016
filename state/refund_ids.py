"""The Refunded Order id each credit memo of an order was given, kept for good.

Hash ``<prefix>:orders:refund-ids:<order number>``: ``memo:<memo number>`` -> the unique_id its Refunded Order
was computed with, and ``order-id`` -> the memo given the order-level id. Written when the refund is computed
(under the order's lock, before it is sent), first write wins, so a later document of the order - a backdated
memo, another worker - finds the decision made. No expiry: unlike the order's documents (400-day retention for
closed orders) this must outlive every re-read of the order. It holds order and memo numbers only, nothing
personal. When it is lost with the rest of Redis, the order flow recovers it from Klaviyo.
"""

from __future__ import annotations

import redis
from redis.client import Pipeline

from state.keys import RedisKeys
from sync.orders.refund_ids import SentRefunds

ORDER_ID_FIELD = "order-id"
MEMO_FIELD = "memo:"


class RefundIdStore:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.base = f"{RedisKeys(key_prefix).orders}:refund-ids"

    def key(self, number: str) -> str:
        return f"{self.base}:{number}"

    def read(self, numbers: list[str]) -> dict[str, SentRefunds | None]:
        """What each order's memos were given, one round trip; None: nothing kept for that order."""
        pipe = self.client.pipeline(transaction=False)
        for number in numbers:
            pipe.hgetall(self.key(number))
        out: dict[str, SentRefunds | None] = {}
        for number, raw in zip(numbers, pipe.execute(), strict=True):
            if not raw:
                out[number] = None
                continue
            pinned = raw.get(ORDER_ID_FIELD) or None
            composite = {f[len(MEMO_FIELD):] for f in raw if f.startswith(MEMO_FIELD)} - {pinned}
            out[number] = SentRefunds(pinned, frozenset(composite))
        return out

    def remember(self, number: str, ids: dict[str, str], order_id_memo: str | None,
                 pipe: Pipeline | None = None) -> None:
        """Keep memo -> unique_id and the memo given the order-level id (first write of each wins)."""
        if not ids and order_id_memo is None:
            return
        p = pipe if pipe is not None else self.client.pipeline()
        key = self.key(number)
        for memo, unique_id in ids.items():
            p.hsetnx(key, MEMO_FIELD + memo, unique_id)
        if order_id_memo is not None:
            p.hsetnx(key, ORDER_ID_FIELD, order_id_memo)
        if pipe is None:
            p.execute()

    def forget(self, number: str) -> None:
        self.client.delete(self.key(number))
