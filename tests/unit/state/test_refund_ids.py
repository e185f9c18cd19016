"""The refund ids given to an order's credit memos, kept for good on real Redis."""

from __future__ import annotations

import redis

from state.refund_ids import RefundIdStore
from sync.orders.refund_ids import SentRefunds


def test_the_first_decision_is_kept_and_nothing_expires(redis_client: redis.Redis) -> None:
    store = RefundIdStore(redis_client, "t")
    assert store.read(["SO1"]) == {"SO1": None}, "nothing kept: the fleet knows nothing of it"
    store.remember("SO1", {"M2": "SO1"}, "M2")
    store.remember("SO1", {"M1": "SO1", "M2": "SO1:refund:M2"}, "M1")  # a later, conflicting decision
    store.remember("SO1", {"M1": "SO1:refund:M1", "M3": "SO1:refund:M3"}, "M2")
    assert store.read(["SO1"]) == {"SO1": SentRefunds("M2", frozenset({"M1", "M3"}))}
    assert redis_client.ttl(store.key("SO1")) == -1, "not on any retention"


def test_many_orders_in_one_read_and_a_pipeline_write(redis_client: redis.Redis) -> None:
    store = RefundIdStore(redis_client, "t")
    pipe = redis_client.pipeline()
    store.remember("SO1", {"M1": "SO1:refund:M1"}, None, pipe)  # no memo took the order id (yet)
    store.remember("SO2", {}, None, pipe)
    assert store.read(["SO1"]) == {"SO1": None}, "written with the pipeline, not before"
    pipe.execute()
    assert store.read(["SO1", "SO2"]) == {"SO1": SentRefunds(None, frozenset({"M1"})), "SO2": None}
