"""The order flow's one-computation-per-order lock and its refund ids, on real Redis (and the Klaviyo sandbox
for the read-back): a busy order goes to the delayed schedule, a lock lost mid-computation writes nothing, the
refund ids are recorded before anything is submitted, and what Klaviyo holds is read back by `bcsync_key`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from config.mapping import Mapping
from config.task_names import RESYNC_ORDERS
from connectors.klaviyo.client import KlaviyoClient
from delivery.senders.events import stamped
from flows.order_refunds import KlaviyoRefunds
from flows.orders import OrderContext, resync, sync_orders
from flows.reconcile import carries_refunds
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.erasure import purge_customer_state
from state.exceptions import ExceptionRegister
from state.ledger import Ledger
from state.order_facts import OrderFactsStore
from state.order_locks import OrderLocks
from state.orders import RedisOrderState
from state.profiles import ProfileStore
from sync.operations import Operation
from sync.orders.records import OrderDocuments
from sync.orders.refund_ids import SentRefunds
from tests.support.orders import ErpOrder

PREFIX = "refund-ids"
MAPPING = Mapping()
API_KEY = "pk_test_0123456789abcdef"


def context(client: redis.Redis, sent: list[list[Operation]], **options: object) -> OrderContext:
    return OrderContext(client, PREFIX, MAPPING, RedisOrderState(client, PREFIX, MAPPING), Ledger(client, PREFIX),
                        ExceptionRegister(client, PREFIX, MAPPING.owners), sent.append, **options)  # type: ignore[arg-type]


def store(ctx: OrderContext, erp: ErpOrder) -> None:
    ctx.state.put_document("order", erp.raw_order())
    for pick in erp.raw_picks():
        ctx.state.put_document("pick", pick)
    for memo in erp.raw_memos():
        ctx.state.put_document("creditmemo", memo)


def refunded_order() -> ErpOrder:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1")
    erp.credit("M1", "20.00", {1: 1})
    return erp


def refund_ids(ctx: OrderContext, number: str = "SO1001") -> SentRefunds | None:
    """What the fleet has recorded of the order's refund ids (with its durable facts)."""
    return {f.number: f.refund_ids for f in ctx.facts.of_profile("external_id:C1001")}.get(number)


def resync_entries(client: redis.Redis) -> dict[str, dict[str, object]]:
    return {k: json.loads(v) for k, v in client.hgetall(f"{PREFIX}:delayed:payload").items()}


def test_an_order_another_worker_computes_is_synced_again_later_not_dropped(redis_client: redis.Redis) -> None:
    sent: list[list[Operation]] = []
    ctx = context(redis_client, sent, lock_wait_seconds=0.2)
    erp = refunded_order()
    store(ctx, erp)
    other = OrderLocks(redis_client, PREFIX).acquire(["SO1001"], wait_seconds=0)
    assert sync_orders(["SO1001"], ctx, lane="batch") == {} and sent == []
    entry = resync_entries(redis_client)["order-resync:SO1001"]
    assert (entry["task"], entry["args"], entry["queue"]) == (RESYNC_ORDERS, [["SO1001"], "batch", False], "batch")
    assert sync_orders(["SO1001"], ctx) == {}
    assert list(resync_entries(redis_client)) == ["order-resync:SO1001"], "a repeat moves the entry, no second"

    OrderLocks(redis_client, PREFIX).release(other)
    resync(["SO1001"], ctx)  # what bcsync.orders.resync runs
    assert {op.payload["metric"] for ops in sent for op in ops if op.kind == "event"} >= {"Placed Order",
                                                                                     "Refunded Order"}


def test_a_lock_lost_before_the_results_are_written_writes_and_sends_nothing(redis_client: redis.Redis) -> None:
    sent: list[list[Operation]] = []

    def slow_read_back(orders: dict[str, OrderDocuments]) -> dict[str, SentRefunds | None]:
        time.sleep(0.3)  # past the lock's life: another worker takes the order meanwhile
        assert OrderLocks(redis_client, PREFIX).acquire(list(orders), wait_seconds=0).numbers == list(orders)
        return {n: SentRefunds() for n in orders}

    ctx = context(redis_client, sent, lock_seconds=0.2, recover_refunds=slow_read_back)
    store(ctx, refunded_order())
    assert sync_orders(["SO1001"], ctx) == {}
    assert sent == [] and ctx.state.computed("SO1001") == {}
    assert refund_ids(ctx) is None, "no decision written"
    assert "order-resync:SO1001" in resync_entries(redis_client)


def test_refund_ids_are_recorded_before_anything_is_submitted(redis_client: redis.Redis) -> None:
    recorded: list[SentRefunds | None] = []

    def submit(ops: list[Operation]) -> None:
        recorded.append(refund_ids(ctx))

    ctx = OrderContext(redis_client, PREFIX, MAPPING, RedisOrderState(redis_client, PREFIX, MAPPING),
                       Ledger(redis_client, PREFIX), ExceptionRegister(redis_client, PREFIX, MAPPING.owners), submit)
    erp = refunded_order()
    store(ctx, erp)
    sync_orders(["SO1001"], ctx)
    assert recorded == [SentRefunds("M1", frozenset())]
    erp.credit("M0", "5.00", {1: 1}, when=erp.entered)  # backdated, read next
    store(ctx, erp)
    planned = sync_orders(["SO1001"], ctx)
    assert planned["SO1001"].result.refund_ids == {"M0": "SO1001:refund:M0", "M1": "SO1001"}


def test_unknown_refund_ids_hold_only_the_refunds_and_sync_the_order_again(redis_client: redis.Redis) -> None:
    sent: list[list[Operation]] = []
    ctx = context(redis_client, sent, recover_refunds=lambda orders: dict.fromkeys(orders))
    store(ctx, refunded_order())
    planned = sync_orders(["SO1001"], ctx)
    metrics = {op.payload["metric"] for ops in sent for op in ops if op.kind == "event"}
    assert "Placed Order" in metrics and "Refunded Order" not in metrics
    assert planned["SO1001"].result.refund_ids == {} and refund_ids(ctx) is None
    assert "order-resync:SO1001" in resync_entries(redis_client)


# --- reading back what Klaviyo holds -----------------------------------------------------------------------


@pytest.fixture
def klaviyo() -> Iterator[ServerThread]:
    server = ServerThread(create_app(KlaviyoSandboxConfig(api_key=API_KEY, rate_limits_enabled=False)))
    server.start()
    yield server
    server.stop()


def send(client: KlaviyoClient, key: str, unique_id: str, memo: str, profile: dict[str, str]) -> None:
    op = Operation(kind="event", key=key, payload={
        "metric": "Refunded Order", "profile": profile, "unique_id": unique_id, "value": 10.0,
        "properties": {"CreditMemo": memo, "ErpOrderNumber": unique_id.split(":")[0]},
        "time": "2026-03-02T10:00:00+00:00"})
    client.create_event(stamped(op))


@pytest.mark.integration
def test_what_klaviyo_holds_is_read_back_per_profile(klaviyo: ServerThread, redis_client: redis.Redis) -> None:
    client = KlaviyoClient(klaviyo.url, API_KEY, "2026-10-15", limiter=None, lane="default")
    erp = refunded_order()
    guest = ErpOrder(MAPPING, number="SO2002", customer="WEBGUEST", email="Shopper@Example.com")
    guest.confirm()
    guest.credit("M9", "5.00", {1: 1})
    read_back = KlaviyoRefunds(client, ProfileStore(redis_client, PREFIX), MAPPING)
    orders = {"SO1001": erp.documents(), "SO2002": guest.documents()}
    assert read_back(orders) == {"SO1001": SentRefunds(), "SO2002": SentRefunds()}, "nothing sent yet"

    send(client, "event:Refunded Order:SO1001", "SO1001", "M2", {"external_id": "C1001"})
    send(client, "event:Refunded Order:SO1001:refund:M1", "SO1001:refund:M1", "M1", {"external_id": "C1001"})
    send(client, "event:Refunded Order:SO2002", "SO2002", "M9", {"email": "shopper@example.com"})
    assert read_back(orders) == {"SO1001": SentRefunds("M2", frozenset({"M1"})), "SO2002": SentRefunds("M9")}


@pytest.mark.integration
def test_a_read_back_klaviyo_refuses_or_cannot_answer_is_unknown(klaviyo: ServerThread,
                                                                  redis_client: redis.Redis) -> None:
    client = KlaviyoClient(klaviyo.url, API_KEY, "2026-10-15", limiter=None, lane="default")
    send(client, "event:Refunded Order:SO1001", "SO1001", "M1", {"external_id": "C1001"})
    register = ExceptionRegister(redis_client, PREFIX, MAPPING.owners)
    read_back = KlaviyoRefunds(client, ProfileStore(redis_client, PREFIX), MAPPING, register)
    orders = {"SO1001": refunded_order().documents()}
    faults = FaultSettings(error_rates={503: 1.0}, endpoints=["GET /api/events"]).to_json()
    httpx.post(f"{klaviyo.url}/_sandbox/faults", json={"clear": True, **faults}, timeout=10).raise_for_status()
    assert read_back(orders) == {"SO1001": None}
    assert register.get("refund_ids_unreadable", "order:SO1001") is None, "a busy Klaviyo needs no operator"
    refused = {"reject_rules": [{"endpoint": "GET /api/events", "status": 403}]}
    httpx.post(f"{klaviyo.url}/_sandbox/faults", json={"clear": True, **refused}, timeout=10).raise_for_status()
    assert read_back(orders) == {"SO1001": None}
    record = register.get("refund_ids_unreadable", "order:SO1001")
    assert record is not None and record.owner == "operations"


def test_the_fleets_refund_ids_last_as_long_as_the_customer_and_go_with_its_erasure(
        redis_client: redis.Redis) -> None:
    asked: list[list[str]] = []

    def klaviyo_holds_nothing(orders: dict[str, OrderDocuments]) -> dict[str, SentRefunds | None]:
        asked.append(sorted(orders))
        return {n: SentRefunds() for n in orders}

    sent: list[list[Operation]] = []
    ctx = context(redis_client, sent, recover_refunds=klaviyo_holds_nothing)
    erp = refunded_order()
    store(ctx, erp)
    assert sync_orders(["SO1001"], ctx)["SO1001"].result.refund_ids == {"M1": "SO1001"}
    assert asked == [["SO1001"]], "the first memo: the fleet has no record yet, Klaviyo is asked"
    erp.credit("M0", "5.00", {1: 1}, when=erp.entered)  # backdated
    store(ctx, erp)
    assert sync_orders(["SO1001"], ctx)["SO1001"].result.refund_ids == {"M0": "SO1001:refund:M0", "M1": "SO1001"}
    assert asked == [["SO1001"]], "the fleet's own record decides: Klaviyo is not asked again"

    report = purge_customer_state(redis_client, PREFIX, "C1001", None, ctx.exceptions)  # the customer's erasure
    assert report.order_facts == 1
    kept = [k.removeprefix(f"{PREFIX}:") for k in redis_client.scan_iter(f"{PREFIX}:*")]
    assert not [k for k in kept if "refund-ids" in k or "order-facts" in k], f"refund ids outlived it: {kept}"
    sync_orders(["SO1001"], ctx)
    assert asked == [["SO1001"], ["SO1001"]], "after the erasure the fleet holds no refund id of the customer"


def reads_received(klaviyo: ServerThread) -> int:
    """The reads a refund read-back makes that the Klaviyo sandbox received so far."""
    endpoints = httpx.get(f"{klaviyo.url}/_sandbox/stats", timeout=10).json()["endpoints"]
    return sum(int(stats["received"]) for key, stats in endpoints.items()
               if key in ("GET /api/metrics", "GET /api/events", "GET /api/profiles"))


@pytest.mark.integration
def test_once_klaviyo_held_no_refund_at_all_nothing_is_read_back_until_an_orders_facts_are_dropped(
        klaviyo: ServerThread, redis_client: redis.Redis) -> None:
    """A first load: Klaviyo holds no Refunded Order, so every refund id given from then on is in the facts
    (recorded before it is sent) and an order with none recorded has none in Klaviyo - a backfill of a year of
    credit memos makes no read per page. Dropping an order's facts (it left the filters) forgets that."""
    client = KlaviyoClient(klaviyo.url, API_KEY, "2026-10-15", limiter=None, lane="default")
    facts = OrderFactsStore(redis_client, PREFIX)
    read_back = KlaviyoRefunds(client, ProfileStore(redis_client, PREFIX), MAPPING, facts=facts)
    orders = {"SO1001": refunded_order().documents()}
    assert read_back(orders) == {"SO1001": SentRefunds()}
    assert facts.refunds_all_recorded(MAPPING.metrics.refunded_order)
    send(client, "event:Refunded Order:SO1001", "SO1001", "M1", {"external_id": "C1001"})  # the metric exists now
    reads = reads_received(klaviyo)
    assert read_back(orders) == {"SO1001": SentRefunds()}
    assert reads_received(klaviyo) == reads, "read back although every refund since is recorded"
    wholesale = ErpOrder(MAPPING, number="SO5", ord_type="WHL")
    wholesale.confirm()
    assert facts.record(wholesale.documents(), MAPPING) is None  # outside the filters, never had facts
    assert facts.refunds_all_recorded(MAPPING.metrics.refunded_order), "nothing was forgotten"
    refunded = ErpOrder(MAPPING, number="SO6")
    refunded.confirm()
    refunded.credit("M6", "5.00", {1: 1})
    assert facts.record(refunded.documents(), MAPPING, refund_ids=SentRefunds("M6")) is not None
    refunded.ord_type = "WHL"  # it leaves the filters: its facts, and the refund id recorded, are dropped
    assert facts.record(refunded.documents(), MAPPING) is None
    assert read_back(orders) == {"SO1001": SentRefunds("M1")}, "read back again once refund ids were forgotten"
    assert reads_received(klaviyo) > reads


@pytest.mark.integration
def test_an_account_that_held_refunds_before_is_always_read_back(klaviyo: ServerThread,
                                                                 redis_client: redis.Redis) -> None:
    client = KlaviyoClient(klaviyo.url, API_KEY, "2026-10-15", limiter=None, lane="default")
    send(client, "event:Refunded Order:SO1001", "SO1001", "M1", {"external_id": "C1001"})  # before the state
    facts = OrderFactsStore(redis_client, PREFIX)
    read_back = KlaviyoRefunds(client, ProfileStore(redis_client, PREFIX), MAPPING, facts=facts)
    assert read_back({"SO1001": refunded_order().documents()}) == {"SO1001": SentRefunds("M1")}
    assert not facts.refunds_all_recorded(MAPPING.metrics.refunded_order)


def test_the_mark_is_not_set_when_refund_ids_were_forgotten_while_klaviyo_was_asked(
        redis_client: redis.Redis) -> None:
    """Worker A reads the generation and asks Klaviyo (no metric yet); meanwhile an order holding refund ids leaves
    the filters, or a customer is erased: A's answer predates that, so it sets no mark. Erasures and reconcile
    repairs of refunds void a mark set before them."""
    facts = OrderFactsStore(redis_client, PREFIX)
    metric = MAPPING.metrics.refunded_order
    before = facts.refunds_generation()
    refunded = ErpOrder(MAPPING, number="SO6")
    refunded.confirm()
    refunded.credit("M6", "5.00", {1: 1})
    facts.record(refunded.documents(), MAPPING, refund_ids=SentRefunds("M6"))
    refunded.ord_type = "WHL"
    facts.record(refunded.documents(), MAPPING)  # dropped with its refund id
    assert not facts.mark_refunds_all_recorded(metric, before) and not facts.refunds_all_recorded(metric)
    assert facts.mark_refunds_all_recorded(metric, facts.refunds_generation())
    assert facts.refunds_all_recorded(metric) and not facts.refunds_all_recorded("Another Metric")
    facts.forget("external_id:C1001")  # an erasure
    assert not facts.refunds_all_recorded(metric)
    assert facts.mark_refunds_all_recorded(metric, facts.refunds_generation())
    refund = Operation(kind="event", key="event:Refunded Order:SO6", lane="batch",
                       payload={"metric": metric, "unique_id": "SO6"}, record="order:SO6")
    placed = refund.model_copy(update={"payload": {"metric": "Placed Order", "unique_id": "SO6"}})
    assert carries_refunds([placed, refund], MAPPING) and not carries_refunds([placed], MAPPING)
