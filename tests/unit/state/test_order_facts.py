"""The durable order facts on a real Redis: one hash per profile, no expiry, refund ids that only grow, the order
leaving the filters, and the customer's erasure as their end."""

from __future__ import annotations

import redis

from config.mapping import Mapping
from state.erasure import purge_customer_state
from state.exceptions import ExceptionRegister
from state.order_facts import OrderFactsStore
from sync.orders.aggregates import facts_aggregates
from sync.orders.facts import order_facts
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


def test_rewriting_an_order_keeps_the_refund_ids_already_sent(redis_client: redis.Redis) -> None:
    store = OrderFactsStore(redis_client, "t")
    erp = confirmed("SO1")
    erp.credit("M1", "10.00", {1: 1})
    facts = order_facts(erp.documents(), MAPPING, PROFILE)
    assert facts is not None
    store.put(facts.model_copy(update={"refund_ids_sent": ("SO1",)}))
    erp.credit("M2", "5.00", {1: 1})
    store.record(erp.documents(), MAPPING)  # rebuilt from the documents, which know nothing of what was sent
    (now,) = store.of_profile(PROFILE)
    assert now.refunded == 15 and now.refund_ids_sent == ("SO1",)
    store.put(now.model_copy(update={"refund_ids_sent": ("SO1:refund:M2",)}))
    assert store.of_profile(PROFILE)[0].refund_ids_sent == ("SO1", "SO1:refund:M2")


def test_an_order_that_leaves_the_filters_stops_counting(redis_client: redis.Redis) -> None:
    store = OrderFactsStore(redis_client, "t")
    erp = confirmed("SO1")
    store.record(erp.documents(), MAPPING)
    erp.ord_type = "WHL"
    assert store.record(erp.documents(), MAPPING) is None
    assert store.of_profile(PROFILE) == []


def test_erasure_drops_the_customers_facts_and_only_theirs(redis_client: redis.Redis) -> None:
    store = OrderFactsStore(redis_client, "t")
    store.record(confirmed("SO1").documents(), MAPPING)
    store.record(confirmed("SO2").documents(), MAPPING)
    store.record(confirmed("SO3", customer="C2002").documents(), MAPPING)
    register = ExceptionRegister(redis_client, "t", MAPPING.owners)
    report = purge_customer_state(redis_client, "t", "C1001", None, register)
    assert report.order_facts == 2
    assert store.of_profile(PROFILE) == [] and redis_client.exists(store.key(PROFILE)) == 0
    assert [f.number for f in store.of_profile("external_id:C2002")] == ["SO3"]
