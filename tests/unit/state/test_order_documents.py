"""An order's documents as the order flow stores them (state/orders.py), on a real private Redis: the newest
read wins, a sighting of every read stored is kept (the newest SEEN_KEPT), closed orders wait for release a grace
period from their last change, and keys an earlier version gave an expiry lose it."""

from __future__ import annotations

import json
import time

import redis

from config.mapping import Mapping
from state.orders import RedisOrderState
from sync.orders.state import SEEN_KEPT
from tests.support.orders import ErpOrder

MAPPING = Mapping()
GRACE_DAYS = 30


def state(client: redis.Redis) -> RedisOrderState:
    return RedisOrderState(client, "docs", MAPPING, grace_days=GRACE_DAYS)


def test_a_page_of_headers_is_stored_newest_first_wins_and_closed_orders_wait_for_release(
    redis_client: redis.Redis,
) -> None:
    orders = state(redis_client)
    open_order, closed_order = ErpOrder(MAPPING, number="SO1"), ErpOrder(MAPPING, number="SO2")
    closed_order.confirm()
    closed_order.close()
    older = open_order.raw_order()
    open_order.confirm()  # a later change of SO1
    before = time.time()
    assert orders.put_documents("order", [open_order.raw_order(), closed_order.raw_order()]) == ["SO1", "SO2"]
    orders.put_documents("order", [older])  # an older read arriving late
    assert orders.documents("SO1").order == open_order.raw_order()
    due = orders.closing(["SO1", "SO2"])
    assert due["SO1"] is None
    assert due["SO2"] is not None and before + GRACE_DAYS * 86400 <= due["SO2"] <= time.time() + GRACE_DAYS * 86400
    # what was stored is seen; the late older read was not stored
    assert [seen["status"] for seen in orders.versions_seen("SO1")] == [open_order.raw_order()[
        MAPPING.fields.order.status]]
    closed_order.status = ErpOrder(MAPPING).status  # entered again
    closed_order.tick()
    orders.put_documents("order", [closed_order.raw_order()])  # reopened: no longer due for release
    assert orders.closing(["SO2"])["SO2"] is None


def test_sightings_are_trimmed_and_an_earlier_versions_expiry_is_lifted(redis_client: redis.Redis) -> None:
    orders = state(redis_client)
    erp = ErpOrder(MAPPING, number="SO3")
    orders.put_documents("order", [erp.raw_order()])
    keys = orders._order_keys("SO3")
    orders.note_computed("SO3", {"event:x": {"metric": "Placed Order"}})
    for key in keys:
        redis_client.expire(key, 3600)  # as an earlier version left them
    for _ in range(SEEN_KEPT + 3):
        erp.tick()
        orders.put_documents("order", [erp.raw_order()])
    assert len(orders.versions_seen("SO3")) == SEEN_KEPT
    assert [redis_client.ttl(key) for key in keys if redis_client.exists(key)] == [-1] * len(
        [key for key in keys if redis_client.exists(key)])
    assert redis_client.exists(*keys) >= 3


def test_in_one_page_the_newest_read_wins_whatever_its_place_and_an_entry_written_with_spaces_is_read(
    redis_client: redis.Redis,
) -> None:
    """The stamps are compared inside the storing script: a page holding two reads of one header keeps the newer
    (and retention follows the header kept); an entry stored by an older writer (JSON with spaces) is read too."""
    orders = state(redis_client)
    erp = ErpOrder(MAPPING, number="SO4")
    erp.confirm()
    erp.close()
    closed_read = erp.raw_order()
    older = dict(closed_read, **{MAPPING.resources.order.last_mod: "2026-01-01 09:00:00",
                                 MAPPING.fields.order.status: ErpOrder(MAPPING).status})
    orders.put_documents("order", [closed_read, older])  # the older read last in the page
    assert orders.documents("SO4").order == closed_read
    assert orders.closing(["SO4"])["SO4"] is not None, "retention follows the header kept, not the last in the page"
    doc_key, slot = orders._key("doc", "SO4"), next(iter(redis_client.hkeys(orders._key("doc", "SO4"))))
    stored = json.loads(redis_client.hget(doc_key, slot))
    redis_client.hset(doc_key, slot, json.dumps(stored))  # json.dumps writes ", " and ": "
    orders.put_documents("order", [older])
    assert orders.documents("SO4").order == closed_read, "an older read replaced an entry written with spaces"
