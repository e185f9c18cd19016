"""The order flow on a tenant without memo and entry dates (tests/support/dialect.py), on real Redis: each credit
memo's Refunded Order is dated by its last_mod as first recorded in the order facts - a later edit of the memo
does not move it - and the order-level refund id goes by memo number; `bcsync audit`'s trail says which fallbacks
were used."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import redis

from config.mapping import Mapping
from flows.orders import OrderContext, audit_trail, sync_orders
from state.exceptions import ExceptionRegister
from state.ledger import Ledger
from state.orders import RedisOrderState
from sync.operations import Operation
from tests.support.dialect import dialect_mapping, in_dialect
from tests.support.orders import ErpOrder

PREFIX = "fallbacks"


def context(client: redis.Redis, mapping: Mapping, sent: list[list[Operation]]) -> OrderContext:
    return OrderContext(client, PREFIX, mapping, RedisOrderState(client, PREFIX, mapping), Ledger(client, PREFIX),
                        ExceptionRegister(client, PREFIX, mapping.owners), sent.append)


def refunds(sent: list[list[Operation]]) -> dict[str, tuple[str, str]]:
    """memo -> (unique_id, time) of the Refunded Order events of the last computation."""
    return {op.record.split(":", 1)[1]: (op.payload["unique_id"], op.payload["time"]) for op in sent[-1]
            if op.payload.get("metric") == "Refunded Order"}


def test_memo_dates_come_from_the_first_recorded_last_mod(redis_client: redis.Redis, tmp_path: Path) -> None:
    mapping = dialect_mapping(tmp_path)
    erp = ErpOrder(Mapping(), number="SO1001", customer="C1001")
    erp.confirm()
    erp.ship("P1")
    erp.credit("M10", "20.00", {1: 1})
    erp.credit("M9", "10.00", {2: 1})
    sent: list[list[Operation]] = []
    ctx = context(redis_client, mapping, sent)
    ctx.state.put_document("order", in_dialect(erp.raw_order(), "order", mapping))
    ctx.state.put_document("pick", in_dialect(erp.raw_picks()[0], "pick", mapping))
    memos = [in_dialect(memo, "creditmemo", mapping) for memo in erp.raw_memos()]
    for memo in memos:
        ctx.state.put_document("creditmemo", memo)
    sync_orders(["SO1001"], ctx)
    first = refunds(sent)
    # the order-level id by memo number (M9 < M10), though M10 was written first; times = each memo's last_mod
    assert first == {"M9": ("SO1001", "2026-03-02T16:00:00+00:00"),
                     "M10": ("SO1001:refund:M10", "2026-03-02T15:30:00+00:00")}
    placed = next(op for op in sent[-1] if op.payload["metric"] == "Placed Order")
    assert placed.payload["time"] == "2026-03-02T14:30:00+00:00"  # no entry date: the confirmation date

    # the memo is edited later (its last_mod moves): its date stays the one first recorded
    ctx.state.put_document("creditmemo", {**memos[0], "CHGTS": "03/05/2026 09:00:00", "MEMOAMT": "21.00"})
    sync_orders(["SO1001"], ctx)
    assert refunds(sent)["M10"] == first["M10"]
    trail = audit_trail("SO1001", ctx)
    used = {(f["document"], f["field"]): f for f in trail["fallbacks"]}
    assert used[("creditmemo:M10", "fields.creditmemo.date")]["value"] == "2026-03-02T15:30:00+00:00"
    assert used[("creditmemo:M10", "fields.creditmemo.date")]["source"].startswith("its last_mod as first recorded")
    assert used[("order:SO1001", "fields.order.entered")]["value"] == "2026-03-02T14:30:00+00:00"

    # the facts lost (a state loss): the memo's last_mod now, still an ERP date, the same ids
    redis_client.delete(ctx.facts.key("external_id:C1001"))
    sync_orders(["SO1001"], ctx)
    again = refunds(sent)
    assert again["M10"] == ("SO1001:refund:M10", datetime(2026, 3, 5, 14, 0, tzinfo=UTC).isoformat())
    assert again["M9"] == first["M9"]


def test_a_tenant_with_memo_dates_records_none(redis_client: redis.Redis) -> None:
    mapping = Mapping()
    erp = ErpOrder(mapping)
    erp.confirm()
    erp.credit("M1", "20.00", {1: 1})
    sent: list[list[Operation]] = []
    ctx = context(redis_client, mapping, sent)
    ctx.state.put_document("order", erp.raw_order())
    ctx.state.put_document("creditmemo", erp.raw_memos()[0])
    sync_orders([erp.number], ctx)
    (facts,) = ctx.facts.of_profile("external_id:C1001")
    assert facts.memo_dates == {} and "md" not in redis_client.hget(ctx.facts.key("external_id:C1001"), erp.number)
    assert audit_trail(erp.number, ctx)["fallbacks"] == []
