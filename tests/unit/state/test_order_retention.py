"""Which orders keep their documents (open) and which are due for release a grace period after their last change
(closed, cancelled), when a page of documents arrives without the orders' headers (`RedisOrderState._retain_many`):
the state decides from what it holds, on a real Redis, and reads a stored header only when it must."""

from __future__ import annotations

import time

import redis

from config.mapping import Mapping
from state.orders import RedisOrderState
from tests.support.orders import ErpOrder

PREFIX = "retention"
MAPPING = Mapping()


def closed(number: str) -> ErpOrder:
    erp = ErpOrder(MAPPING, number=number)
    erp.confirm()
    erp.ship(f"P{number}")
    erp.close()
    return erp


def still_open(number: str) -> ErpOrder:
    erp = ErpOrder(MAPPING, number=number)
    erp.confirm()
    erp.ship(f"P{number}", {1: 1})  # partly shipped
    return erp


def hgetalls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0))


def test_documents_without_their_headers_keep_each_orders_retention_and_read_a_header_only_when_they_must(
    redis_client: redis.Redis,
) -> None:
    state = RedisOrderState(redis_client, PREFIX, MAPPING, grace_days=1)
    orders = {"SO1": closed("SO1"), "SO2": still_open("SO2"), "SO3": closed("SO3"), "SO4": closed("SO4")}
    state.put_documents("order", [orders[n].raw_order() for n in ("SO1", "SO2", "SO3")])
    redis_client.zrem(state.keys.orders_closing, "SO3")  # its closed header stored, no closing entry: read it
    before = state.closing(list(orders))
    assert before["SO1"] is not None and before["SO2"] is None and before["SO3"] is None
    time.sleep(0.01)
    reads = hgetalls(redis_client)
    state.put_documents("pick", [pick for n in ("SO1", "SO2", "SO3", "SO4") for pick in orders[n].raw_picks()])
    after = state.closing(list(orders))
    assert after["SO1"] is not None and after["SO1"] > before["SO1"], "a closed order is due from its last change"
    assert after["SO2"] is None, "an open order keeps its documents"
    assert after["SO3"] is not None, "a closed header read from the state makes the order due"
    assert after["SO4"] is None, "no header stored: kept until one says the order is closed"
    assert hgetalls(redis_client) - reads == 2, "only the stored headers of orders not closing (SO2, SO3) are read"
    reads = hgetalls(redis_client)
    state.put_documents("pick", orders["SO4"].raw_picks())  # a backfill's documents, orders not stored yet
    assert hgetalls(redis_client) == reads
    state.put_documents("order", [orders["SO4"].raw_order()])
    assert state.closing(["SO4"])["SO4"] is not None
