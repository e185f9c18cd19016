"""Order lifecycle tasks (thin): an ERP change -> the order's desired Klaviyo events -> `submit`.

`handle_change(event)` is what `bcsync.handle_change` calls for order, pick, invoice and credit memo changes:
store the document (`sync.orders.state`), load all of the order's documents, build the `DeliveredView` from
the ledger and the state, call `desired_operations`, register problems, submit what is still missing, and
recompute the customer's ERP aggregates (a `profile_upsert` with only those properties, default lane).
`sync_orders(numbers)` does the same for many orders at once in a few Redis round trips (one state read, one
ledger read per round, one write pipeline), without aggregates; the backfill calls it per page and
`refresh_profiles` per 200 profiles. Each order is computed under its lock, one computation at a time
(`flows/order_locking.py`), and the ids of its refunds are decided once (`flows/order_refunds.py`).

Ordering of an order's events (Placed before Cancelled, Fulfilled, Refunded). We rely on the desired-state
recomputation and Klaviyo's `unique_id`, not on one envelope per order: the delivery backbone sends a
multi-event envelope as a bulk job (asynchronous, unordered), which would be worse on the default lane.
Instead: (1) the domain never emits a Cancelled/Refunded/Fulfilled for an order whose Placed is neither in
the ledger nor in the same result; (2) when the Placed goes in the same result, every dependent event rides
its lane (`default`), submitted in lifecycle order, so the lane's FIFO delivers them in order; (3) only a
Cancelled whose Placed is already in the ledger takes the fast lane. A Placed that fails transiently and is
retried later can be overtaken by its dependants; Klaviyo keys its timeline on each event's `time`
(confirmation time < cancellation time) and keeps one event per unique_id, so the stored state converges.

Bulk cycles. The poller's event count per cycle is not visible here, so each handler counts the distinct
records of its resource changed within one poll interval of that resource (`resources.<r>.poll_seconds`)
in a Redis sorted set (`<prefix>:orders:window:<resource>`). Once more than `lifecycle.bulk_threshold`
records of one resource arrived in that window, the order's operations (and aggregates) go to the batch
lane - except fast-lane ones (a Cancelled Order of a placed order), which stay fast - through a Redis
buffer (`<prefix>:orders:bulk`) that is flushed in bulk requests of up to 1000 events
(whole jobs at once; a tail when more arrive or once it has waited `bulk_max_wait_seconds`: flows/bulk_buffer.py).
The first `bulk_threshold` changes of a bulk update are already on their way on the default lane.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

from config.lanes import Lane
from config.mapping import get_mapping
from config.task_names import FLUSH_ORDER_BULK
from delivery.publish import submit
from delivery.runtime import runtime
from flows.order_context import OrderContext
from flows.order_locking import confirm_held, one_computation_per_order, resync_current
from flows.order_reading import dated, parse_stored, record_problems
from flows.order_refunds import KlaviyoRefunds, with_refund_ids
from flows.order_release import sync_released
from state.keys import RedisKeys
from state.order_facts import OrderFactsStore
from state.stock import StockState
from sync.catalog.records import SkuKey
from sync.changes import ChangeEvent
from sync.operations import Operation
from sync.orders.aggregates import facts_aggregates
from sync.orders.desired import DeliveredView, DesiredResult, desired_operations, event_key
from sync.orders.fallbacks import fallbacks_in_use
from sync.orders.lifecycle import is_confirmed, klaviyo_order_id, profile_key
from sync.orders.records import OrderDocuments, OrderStatus
from sync.orders.refund_ids import decided_refunds
from sync.orders.state import OrderSnapshot

log = logging.getLogger(__name__)
MAX_LEDGER_ROUNDS = 6
REFUND_IDS_RETRY_SECONDS = 30.0  # an order whose refund ids Klaviyo could not tell is synced again after this


def default_context() -> OrderContext:
    rt = runtime()
    mapping = get_mapping()
    state = rt.stores.orders

    def schedule_flush(at: float) -> None:
        rt.delayed.add(FLUSH_ORDER_BULK, [], "batch", at)

    return OrderContext(rt.redis, rt.settings.key_prefix, mapping, state, rt.ledger, rt.exceptions, submit,
                        schedule_flush, bulk_max_wait_seconds=rt.settings.bulk_max_wait_seconds,
                        lock_seconds=rt.settings.order_lock_seconds,
                        # waiting for a lock must never be what runs a task into its time limit
                        lock_wait_seconds=min(rt.settings.order_lock_wait_seconds,
                                              rt.settings.task_soft_time_limit_seconds / 4),
                        recover_refunds=KlaviyoRefunds(rt.client("default"), rt.stores.profiles, mapping,
                                                       rt.exceptions, OrderFactsStore(rt.redis,
                                                                                      rt.settings.key_prefix)))


# --- the flow -------------------------------------------------------------------------------------


def process_change(event: ChangeEvent, ctx: OrderContext) -> DesiredResult | None:
    """Store the changed document, then bring its order (and customer aggregates) up to date."""
    number = ctx.state.put_document(event.resource, event.record, event.version)
    if number is None:
        field = getattr(ctx.mapping.fields, event.resource)
        link = field.number if event.resource == "order" else field.order
        reason = f"'{link}' is missing: cannot tell its order"
        ctx.exceptions.record("invalid_record", event.record_ref, reason)
        return None
    bulk = is_bulk_cycle(ctx, event.resource, event.key)
    return sync_order(number, ctx, lane="batch" if bulk else None)


@dataclass
class Planned:
    """One order's documents, the ledger's view of it and what it still needs."""

    docs: OrderDocuments
    view: DeliveredView
    result: DesiredResult


def plan_orders(docs: dict[str, OrderDocuments], snapshots: dict[str, OrderSnapshot], ctx: OrderContext,
                pipe: Pipeline, *, backfill: bool = False) -> dict[str, Planned]:
    """The ledger's view of each order and its desired operations, with one ledger read for all of them
    (plus one per round while keys never computed before turn up). A pending revision whose keys are all
    in the ledger is promoted and a refund pin read from the ledger entry's record is kept (both written
    on `pipe`)."""
    metrics = ctx.mapping.metrics
    refund_keys = {n: event_key(metrics.refunded_order, klaviyo_order_id(d.order, ctx.mapping))
                   for n, d in docs.items()}
    wanted: set[str] = set(refund_keys.values())
    for number in docs:
        snap = snapshots[number]
        wanted.update(snap.computed)
        if snap.pending is not None:
            wanted.update(snap.pending.keys)
    entries = ctx.ledger.delivered(sorted(wanted))
    views: dict[str, DeliveredView] = {}
    for number in docs:
        snap = snapshots[number]
        keys = frozenset(k for k in snap.computed if k in entries)
        revision = snap.revision
        if snap.pending is not None and all(k in keys or k in entries for k in snap.pending.keys):
            ctx.state.set_delivered_revision(number, snap.pending.revision, pipe)
            revision = snap.pending.revision
        pin = snap.refund_pin
        entry = entries.get(refund_keys[number])
        if entry is not None and entry.record and entry.record.startswith("creditmemo:"):
            pin = entry.record.split(":", 1)[1]
            ctx.state.set_refund_pin(number, pin, pipe)
        views[number] = DeliveredView(keys=keys, revision=revision, refund_memo_with_order_id=pin)
    views, unknown = with_refund_ids(views, docs, ctx.facts, ctx.mapping, ctx.recover_refunds)
    resync_current(unknown, REFUND_IDS_RETRY_SECONDS)
    # Keys never computed before (a re-scan, a new memo) may still be in the ledger: ask until stable.
    planned: dict[str, Planned] = {}
    unsettled = list(docs)
    for round_ in range(MAX_LEDGER_ROUNDS + 1):
        results = {n: desired_operations(docs[n], views[n], ctx.mapping, backfill=backfill) for n in unsettled}
        found = ctx.ledger.delivered(sorted({op.key for r in results.values() for op in r.operations}))
        unsettled = []
        for number, result in results.items():
            hits = {op.key for op in result.operations if op.key in found}
            if hits and round_ < MAX_LEDGER_ROUNDS:
                views[number] = views[number].model_copy(update={"keys": views[number].keys | hits})
                unsettled.append(number)
            else:
                planned[number] = Planned(docs[number], views[number], result)
        if not unsettled:
            break
    return planned


def sync_order(number: str, ctx: OrderContext, *, lane: Lane | None = None, backfill: bool = False,
               aggregates: bool = True) -> DesiredResult | None:
    """Send what the order still needs; `lane` overrides every operation's lane (batch for bulk cycles)."""
    planned = sync_orders([number], ctx, lane=lane, backfill=backfill).get(number)
    if planned is None:
        profile = ctx.state.released([number]).get(number)
        if profile is not None and aggregates:  # a released order: its facts changed (a late credit memo)
            refresh_profiles([profile], ctx, "batch" if lane == "batch" or backfill else "default")
        return None
    if planned.result.excluded is None:
        if not backfill:
            feed_demand(planned.docs, ctx)
        if aggregates:
            refresh_aggregates(planned.docs, ctx, lane="batch" if lane == "batch" or backfill else "default")
    return planned.result


@one_computation_per_order
def sync_orders(numbers: list[str], ctx: OrderContext, *, lane: Lane | None = None,
                backfill: bool = False) -> dict[str, Planned]:
    """`sync_order` for many orders (a backfill page) in a few Redis round trips: one read of their
    state, the ledger reads of `plan_orders`, one write pipeline (computed events, revisions, refund ids,
    facts), then delivery in list order. No aggregates, no demand feed. Orders whose header was not
    read yet are left out of the answer."""
    numbers = list(dict.fromkeys(numbers))
    # an order whose documents were released is computed from its durable facts (flows/order_release.py)
    released = ctx.state.released(numbers)
    numbers = [n for n in numbers if n not in released]
    snapshots = ctx.state.snapshots(numbers)
    docs = dated(
        {n: d for n in numbers if (d := parse_stored(n, snapshots[n].documents, ctx)) is not None}, ctx)
    pipe = ctx.redis.pipeline()
    outgoing = [op.model_copy(update={"lane": lane}) if lane and op.lane != "fast" else op
                for op in (sync_released(released, ctx, pipe, backfill=backfill) if released else [])]
    planned = plan_orders(docs, snapshots, ctx, pipe, backfill=backfill)
    for number in docs:
        plan = planned[number]
        result = plan.result
        record_problems(ctx, result.problems, number)
        # the durable facts the customer's aggregates are summed from (they outlive the documents), with the
        # refund ids this computation gave the memos: recorded before anything is sent, first decision wins
        ctx.facts.record(plan.docs, ctx.mapping, pipe, decided_refunds(result, plan.view))
        if result.excluded is not None:
            continue
        # a bulk cycle moves the order's work to the batch lane, but never what is urgent: a stock-out that
        # cancels 500 orders must not queue their Cancelled Order behind the catalog backlog
        ops = [op.model_copy(update={"lane": lane}) if lane and op.lane != "fast" else op
               for op in result.operations]
        remember(number, result, plan.view, ops, ctx, pipe)
        outgoing.extend(ops)
    confirm_held()  # still the only computation of these orders: write, else none of it (synced again)
    pipe.execute()
    deliver(outgoing, ctx)
    return {n: planned[n] for n in docs}


def resync(numbers: list[str], ctx: OrderContext, *, lane: Lane | None = None, backfill: bool = False) -> None:
    """Orders handed to the delayed schedule (another worker was computing them, or their refund ids could not
    be read): bring each up to date from what is stored now, aggregates included (`bcsync.orders.resync`)."""
    for number in numbers:
        sync_order(number, ctx, lane=lane, backfill=backfill)


def feed_demand(docs: OrderDocuments, ctx: OrderContext) -> None:
    """Units confirmed per SKU feed the stock flow's dynamic high-demand rule (a line re-read counts once;
    a cancelled order or line counts nothing)."""
    order = docs.order
    if not is_confirmed(order) or order.confirmed is None or order.status == OrderStatus.CANCELLED:
        return
    for line in order.lines:
        units = line.qty - line.cancel_qty
        if units > 0:
            sku = SkuKey(line.style, line.color_code, line.lbl_code, line.dimension, line.size_desc)
            StockState(ctx.redis, ctx.key_prefix).record_confirmed(
                sku, f"{order.number}:{line.line_seq}", units, order.confirmed.timestamp(),
                ctx.mapping.stock.high_demand_window_hours,
            )


def remember(number: str, result: DesiredResult, view: DeliveredView, ops: list[Operation],
             ctx: OrderContext, pipe: Pipeline | None = None) -> None:
    ctx.state.note_computed(number, {
        op.key: {"metric": op.payload["metric"], "unique_id": op.payload["unique_id"], "lane": op.lane,
                 "record": op.record, "version": op.version, "computed_at": time.time(),
                 "backfill": op.payload.get("backfill", False),
                 # what finance reads in `bcsync audit order`: the event's date, value and currency as sent
                 "time": op.payload.get("time"), "value": op.payload.get("value"),
                 "currency": op.payload.get("value_currency")}
        for op in ops
    }, pipe)
    if result.revision is not None:
        outstanding = set(result.revision_keys) - view.keys
        if outstanding:
            ctx.state.set_pending_revision(number, result.revision, result.revision_keys, pipe)
        else:
            ctx.state.set_delivered_revision(number, result.revision, pipe)


def deliver(ops: list[Operation], ctx: OrderContext) -> None:
    batch = [op for op in ops if op.lane == "batch"]
    now = [op for op in ops if op.lane != "batch"]
    if now:
        ctx.submit(now)
    if batch:
        buffer_bulk(batch, ctx)


def refresh_aggregates(docs: OrderDocuments, ctx: OrderContext, lane: Lane = "default") -> Operation | None:
    """Recompute the profile's ERP aggregates from the facts of every order of it (never incremented)."""
    key = profile_key(docs.order, ctx.mapping)
    if key is None:
        return None
    return refresh_profiles([key], ctx, lane)[0]


def refresh_profiles(keys: list[str], ctx: OrderContext, lane: Lane = "default") -> list[Operation]:
    """The ERP aggregates of many profiles (`lifecycle.profile_key`s) over their whole history: the durable
    facts of all their orders (`state.order_facts`, one read), delivered as one `profile_upsert` each."""
    facts = ctx.facts.of_profiles(keys)
    ops = []
    for key in keys:
        kind, _, ident = key.partition(":")
        ops.append(Operation(
            kind="profile_upsert", key=f"profile-aggregates:{key}", lane=lane,
            payload={kind: ident, "properties": facts_aggregates(facts[key], ctx.mapping)},
            version=f"{time.time():017.6f}", record=f"customer-aggregates:{key}",
            # a customer's aggregates update its profile by id, so they can never create another one
            profile_of=ident if kind == "external_id" else None,
        ))
    deliver(ops, ctx)
    return ops


# --- bulk cycles ----------------------------------------------------------------------------------


def is_bulk_cycle(ctx: OrderContext, resource: str, key: str, now: float | None = None) -> bool:
    """More distinct records of `resource` changed within one poll interval than `bulk_threshold`?"""
    now = time.time() if now is None else now
    window = float(getattr(ctx.mapping.resources, resource).poll_seconds)
    zkey = RedisKeys(ctx.key_prefix).order_bulk_window(resource)
    pipe = ctx.redis.pipeline()
    pipe.zadd(zkey, {key: now})
    pipe.zremrangebyscore(zkey, "-inf", now - window)
    pipe.zcard(zkey)
    pipe.expire(zkey, int(window) + 60)
    count = pipe.execute()[2]
    return bool(count > ctx.mapping.lifecycle.bulk_threshold)


def buffer_bulk(ops: Iterable[Operation], ctx: OrderContext) -> None:
    """Batch-lane operations into the bulk buffer: whole jobs leave at once, a tail waits (flows/bulk_buffer.py)."""
    ctx.bulk.push(ops)


def flush_bulk_buffer(ctx: OrderContext, *, drain: bool = False) -> int:
    """Submit the buffer's whole bulk jobs, and its tails once they are `bulk_max_wait_seconds` old (every tail
    when `drain`); returns how many operations. Claimed, submitted, then deleted (`state/claims.py`): a flush
    that dies in between loses nothing, its claim goes back to the buffer."""
    return ctx.bulk.flush(drain=drain)


def handle_change(event: ChangeEvent) -> None:
    """Entry point from `bcsync.handle_change` for order, pick, invoice and credit memo changes."""
    process_change(event, default_context())



def audit_trail(number: str, ctx: OrderContext) -> dict[str, Any]:
    """Everything the fleet knows about one order (for `bcsync audit order`)."""
    records = {f"order:{number}"}
    computed = ctx.state.computed(number)
    records |= {entry["record"] for entry in computed.values() if entry.get("record")}
    delivered = {e.key: e for r in sorted(records) for e in ctx.ledger.for_record(r)}
    docs = parse_stored(number, ctx.state.snapshots([number])[number].documents, ctx, report=False)
    released = ctx.state.released([number]).get(number)
    facts = next((f for f in ctx.facts.of_profile(released) if f.number == number), None) if released else None
    return {
        "released": facts,  # its documents were released: what the fleet keeps of it (flows/order_release.py)
        "fallbacks": fallbacks_in_use(docs, ctx.mapping, ctx.facts.memo_dates({number: docs}, ctx.mapping).get(
            number)) if docs is not None else [],
        "versions": ctx.state.versions_seen(number),
        "computed": computed,
        "delivered": sorted(delivered.values(), key=lambda e: e.delivered_at),
        "records": sorted(records),
        "revision": ctx.state.delivered_revision(number),
        "pending": ctx.state.pending_revision(number),
        "refund_pin": ctx.state.refund_pin(number),
        "documents": docs,  # the order's parsed documents (None: its header not read yet), for finance's view
    }


__all__ = ["handle_change", "process_change", "sync_order", "sync_orders", "refresh_profiles", "flush_bulk_buffer",
           "OrderContext"]
