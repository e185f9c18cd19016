"""Closed orders keep their full documents only for a grace period (issue 18): then only their durable facts, and
what the ERP says of them later is computed from those facts. On a real Redis, with the order flow's own stores;
delivery is the ledger written as the delivery engine would."""

from __future__ import annotations

import time

import redis

from config.mapping import Mapping
from flows.order_release import release_due
from flows.orders import OrderContext, refresh_profiles, sync_order, sync_orders
from state.exceptions import ExceptionRegister
from state.fingerprints import FingerprintStore
from state.ledger import Ledger
from state.orders import RedisOrderState
from sync.fingerprints import StoredFingerprint
from sync.ledger import LedgerEntry
from sync.operations import Operation
from sync.orders.refund_ids import SentRefunds
from tests.support.orders import ErpOrder

PREFIX = "release"
MAPPING = Mapping()
PROFILE = "external_id:C1001"
GRACE_DAYS = 30
LATER = GRACE_DAYS * 86400 + 3600  # seconds after its last change: past the grace period


def context(client: redis.Redis, sent: list[Operation]) -> OrderContext:
    def deliver(ops: list[Operation]) -> None:  # sent, and recorded in the ledger as the engine does
        sent.extend(ops)
        Ledger(client, PREFIX).record([LedgerEntry(key=op.key, delivered_at=time.time(), status=202,
                                                   endpoint="events", version=op.version, record=op.record)
                                       for op in ops])
    return OrderContext(client, PREFIX, MAPPING, RedisOrderState(client, PREFIX, MAPPING, grace_days=GRACE_DAYS),
                        Ledger(client, PREFIX), ExceptionRegister(client, PREFIX, MAPPING.owners), deliver)


def store(ctx: OrderContext, erp: ErpOrder, *, memos: bool = True) -> None:
    """The order's documents as the order flow stores them, and the poller's fingerprints of them."""
    fingerprints = FingerprintStore(ctx.redis, PREFIX)
    for resource, records in (("order", [erp.raw_order()]), ("pick", erp.raw_picks()),
                              ("creditmemo", erp.raw_memos() if memos else [])):
        for record in records:
            ctx.state.put_document(resource, record)
            key = str(record[getattr(MAPPING.resources, resource).key])
            fingerprints.remember(resource, [(key, StoredFingerprint("f" * 32, "2026-03-02T09:00:00", 1, {}))])


def closed_refunded() -> ErpOrder:
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1")
    erp.credit("M1", "20.00", {1: 1})
    erp.close()
    return erp


def refunds(sent: list[Operation]) -> list[tuple[str, float]]:
    return [(op.payload["unique_id"], op.payload["value"]) for op in sent
            if op.kind == "event" and op.payload["metric"] == "Refunded Order"]


def keys_of(client: redis.Redis, number: str) -> list[str]:
    """Every key that is about the order (its documents, state, audit trail, ledger entries and index)."""
    return sorted(k for k in client.scan_iter(f"{PREFIX}:*") if number in k and "order-facts" not in k
                  and "order-released" not in k)


def test_a_closed_order_past_its_grace_period_keeps_only_its_facts(redis_client: redis.Redis) -> None:
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    erp = closed_refunded()
    store(ctx, erp)
    sync_order("SO1001", ctx)
    assert {op.payload["metric"] for op in sent if op.kind == "event"} >= {"Placed Order", "Refunded Order"}
    assert keys_of(redis_client, "SO1001"), "documents, state, ledger while it can still change"

    assert release_due(ctx, now=time.time() + 3600) == [], "within its grace period it keeps everything"
    assert ctx.state.documents("SO1001").order is not None

    assert release_due(ctx, now=time.time() + LATER) == ["SO1001"]
    assert keys_of(redis_client, "SO1001") == [], "documents, lifecycle state, ledger entries and index gone"
    for resource in ("order", "pick", "creditmemo"):
        assert redis_client.hlen(f"{PREFIX}:fp:{resource}") == 0, f"the poller's {resource} fingerprints too"
    (facts,) = ctx.facts.of_profile(PROFILE)
    assert facts.number == "SO1001" and facts.refunded == 20 and facts.memos == {"M1": 20}
    assert facts.refund_ids == SentRefunds("M1") and facts.header.sales_channel == "WEB"
    assert ctx.state.released(["SO1001"]) == {"SO1001": PROFILE}
    assert redis_client.zcard(f"{PREFIX}:orders:closing") == 0
    props = refresh_profiles([PROFILE], ctx)[0].payload["properties"]
    assert (props["erp_order_count"], props["erp_refunds"]) == (1, 20.0), "aggregates from the facts"


def test_an_open_order_keeps_its_documents(redis_client: redis.Redis) -> None:
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1", {1: 1})  # partly shipped: still open
    store(ctx, erp)
    sync_order("SO1001", ctx)
    assert release_due(ctx, now=time.time() + 10 * LATER) == []
    assert ctx.state.documents("SO1001").order is not None and ctx.state.documents("SO1001").picks
    assert ctx.state.computed("SO1001") and ctx.state.released(["SO1001"]) == {}


def test_a_late_credit_memo_on_a_released_order_is_refunded_once_and_counted_once(
        redis_client: redis.Redis) -> None:
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    erp = closed_refunded()
    store(ctx, erp)
    sync_order("SO1001", ctx)
    assert refunds(sent) == [("SO1001", 20.0)]
    release_due(ctx, now=time.time() + LATER)
    sent.clear()

    erp.credit("M2", "15.00", {2: 1})  # a return months after the order closed
    ctx.state.put_document("creditmemo", erp.raw_memos()[1])
    sync_order("SO1001", ctx)
    assert refunds(sent) == [("SO1001:refund:M2", 15.0)], "its own Refunded Order, the order-level id kept by M1"
    (event,) = [op for op in sent if op.kind == "event"]
    assert event.payload["profile"] == {"external_id": "C1001"}
    assert event.payload["properties"]["SalesChannel"] == "WEB" and event.payload["properties"]["CreditMemo"] == "M2"
    aggregates = [op for op in sent if op.kind == "profile_upsert"][0].payload["properties"]
    assert (aggregates["erp_refunds"], aggregates["erp_order_count"]) == (35.0, 1)
    assert ctx.state.documents("SO1001").credit_memos == [], "merged into the facts, not kept"

    # read again - both memos and the header (a re-scan): nothing sent twice, nothing counted twice
    sent.clear()
    store(ctx, erp)
    sync_orders(["SO1001"], ctx)
    assert refunds(sent) == []
    (facts,) = ctx.facts.of_profile(PROFILE)
    assert facts.refunded == 35 and facts.memos == {"M1": 20, "M2": 15}
    assert facts.refund_ids == SentRefunds("M1", frozenset({"M2"}))
    assert facts.placed_at is not None and facts.status == "closed"
    assert refresh_profiles([PROFILE], ctx)[0].payload["properties"]["erp_refunds"] == 35.0


def test_the_first_refund_of_a_released_order_takes_the_order_level_id(redis_client: redis.Redis) -> None:
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    erp = ErpOrder(MAPPING)
    erp.confirm()
    erp.ship("P1")
    erp.close()
    store(ctx, erp)
    sync_order("SO1001", ctx)
    release_due(ctx, now=time.time() + LATER)
    sent.clear()
    erp.credit("M1", "12.50", {1: 1})
    ctx.state.put_document("creditmemo", erp.raw_memos()[0])
    sync_order("SO1001", ctx)
    ctx.state.put_document("creditmemo", erp.raw_memos()[0])  # the poller's overlap reads it again
    sync_order("SO1001", ctx)
    assert refunds(sent) == [("SO1001", 12.5)]
    assert ctx.facts.of_profile(PROFILE)[0].refunded == 12.5


def test_a_released_order_read_again_is_never_rebuilt_from_the_documents_read_since(
        redis_client: redis.Redis) -> None:
    sent: list[Operation] = []
    ctx = context(redis_client, sent)
    erp = closed_refunded()
    store(ctx, erp)
    sync_order("SO1001", ctx)
    release_due(ctx, now=time.time() + LATER)
    ctx.state.put_document("order", erp.raw_order())  # the header alone, its computation still to come
    assert release_due(ctx, now=time.time() + 2 * LATER) == []
    (facts,) = ctx.facts.of_profile(PROFILE)
    assert (facts.refunded, facts.memos, facts.shipped_value) == (20, {"M1": 20}, 130), "not rebuilt from the header"
    sync_order("SO1001", ctx)
    assert ctx.facts.of_profile(PROFILE)[0].refunded == 20 and ctx.state.documents("SO1001").order is None
