"""The durable order facts on a real Redis: one hash per profile, no expiry, refund ids decided once, the order
leaving the filters, and the customer's erasure as their end."""

from __future__ import annotations

import redis

from config.mapping import Mapping
from state.erasure import purge_customer_state
from state.exceptions import ExceptionRegister
from state.order_facts import OrderFactsStore
from sync.orders.aggregates import facts_aggregates
from sync.orders.refund_ids import SentRefunds
from tests.support.orders import ErpOrder

MAPPING = Mapping()
PROFILE = "external_id:C1001"


def confirmed(number: str, **fields: str) -> ErpOrder:
    erp = ErpOrder(MAPPING, number=number, **fields)  # type: ignore[arg-type]
    erp.confirm()
    return erp


def test_facts_are_kept_per_profile_without_expiry_and_read_back_exactly(redis_client: redis.Redis) -> None:
    store = OrderFactsStore(redis_client, "t")
    first, second = confirmed("SO1"), confirmed("SO2")
    second.credit("M1", "12.50", {1: 1})
    second.close()
    pipe = redis_client.pipeline()
    kept = [store.record(o.documents(), MAPPING, pipe) for o in (first, second)]
    assert redis_client.exists(store.key(PROFILE)) == 0, "queued on the caller's pipeline"
    pipe.execute()
    assert store.key(PROFILE) == "t:order-facts:external_id:C1001"
    assert redis_client.ttl(store.key(PROFILE)) == -1, "no retention: as long as the customer"
    assert store.of_profile(PROFILE) == kept
    assert facts_aggregates(store.of_profile(PROFILE), MAPPING)["erp_order_count"] == 2
    assert store.of_profiles([PROFILE, "email:nobody@example.com"])["email:nobody@example.com"] == []


def test_rewriting_an_order_keeps_the_refund_ids_already_decided(redis_client: redis.Redis) -> None:
    store = OrderFactsStore(redis_client, "t")
    erp = confirmed("SO1")
    erp.credit("M2", "10.00", {1: 1})
    store.record(erp.documents(), MAPPING, refund_ids=SentRefunds("M2"))
    erp.credit("M1", "5.00", {1: 1}, when=erp.entered)  # backdated
    store.record(erp.documents(), MAPPING)  # rebuilt from the documents, which know nothing of what was sent
    (now,) = store.of_profile(PROFILE)
    assert now.refunded == 15 and now.refund_ids == SentRefunds("M2")
    # a later, conflicting decision (M1 under the order-level id) changes nothing already decided
    store.record(erp.documents(), MAPPING, refund_ids=SentRefunds("M1", frozenset({"M2", "M3"})))
    assert store.of_profile(PROFILE)[0].refund_ids == SentRefunds("M2", frozenset({"M3"}))
    store.record(erp.documents(), MAPPING, refund_ids=SentRefunds(None, frozenset({"M1"})))
    assert store.of_profile(PROFILE)[0].refund_ids == SentRefunds("M2", frozenset({"M1", "M3"}))
    assert redis_client.ttl(store.key(PROFILE)) == -1, "as long as the customer: no retention"


def test_refund_ids_of_many_orders_in_one_read(redis_client: redis.Redis) -> None:
    store = OrderFactsStore(redis_client, "t")
    one, two, guest = confirmed("SO1"), confirmed("SO2"), confirmed("SO3", customer="WEBGUEST")
    pipe = redis_client.pipeline()
    store.record(one.documents(), MAPPING, pipe, SentRefunds(None, frozenset({"M1"})))  # none under the order id yet
    store.record(two.documents(), MAPPING, pipe)
    store.record(guest.documents(), MAPPING, pipe, SentRefunds("M9"))
    orders = {o.number: o.documents() for o in (one, two, guest, confirmed("SO4"))}
    assert store.refund_ids(orders, MAPPING) == dict.fromkeys(orders), "queued on the pipeline, not written"
    pipe.execute()
    assert store.refund_ids(orders, MAPPING) == {
        "SO1": SentRefunds(None, frozenset({"M1"})), "SO2": None, "SO3": SentRefunds("M9"), "SO4": None}


def test_an_order_that_leaves_the_filters_stops_counting(redis_client: redis.Redis) -> None:
    store = OrderFactsStore(redis_client, "t")
    erp = confirmed("SO1")
    store.record(erp.documents(), MAPPING)
    erp.ord_type = "WHL"
    assert store.record(erp.documents(), MAPPING) is None
    assert store.of_profile(PROFILE) == []


def test_erasure_drops_the_customers_facts_and_only_theirs(redis_client: redis.Redis) -> None:
    store = OrderFactsStore(redis_client, "t")
    orders = {"SO1": confirmed("SO1"), "SO2": confirmed("SO2"), "SO3": confirmed("SO3", customer="C2002")}
    store.record(orders["SO1"].documents(), MAPPING, refund_ids=SentRefunds("M1"))
    store.record(orders["SO2"].documents(), MAPPING)
    store.record(orders["SO3"].documents(), MAPPING, refund_ids=SentRefunds("M3"))
    register = ExceptionRegister(redis_client, "t", MAPPING.owners)
    report = purge_customer_state(redis_client, "t", "C1001", None, register)
    assert report.order_facts == 2
    assert store.of_profile(PROFILE) == [] and redis_client.exists(store.key(PROFILE)) == 0
    assert [f.number for f in store.of_profile("external_id:C2002")] == ["SO3"]
    assert store.refund_ids({n: o.documents() for n, o in orders.items()}, MAPPING) == {
        "SO1": None, "SO2": None, "SO3": SentRefunds("M3")}, "the erased customer's refund ids went with it"
