"""Releasing closed orders' documents, and computing what the ERP says of a released order later
(docs/order-lifecycle.md, "Released orders"; the rules are `sync.orders.compacted`).

`release_due` (beat: `bcsync.orders.release`, every minute) takes the orders whose grace period has passed
(`state.orders`, ``orders:closing``) under their locks (`flows.order_locking`), one transaction each, watching the
order's document hash so a document stored meanwhile keeps it for the next run:
- its durable facts are written from its full documents (memo totals, the header fields events carry);
- its documents, lifecycle state and audit trail go, with the ledger entries of its events (the ledger keys its
  computations noted) and the poller's fingerprints of its documents (a re-read is then handed on as a change:
  computed from the facts, it sends nothing already sent);
- ``order-released:<bucket>`` notes its profile, where a document read later finds its facts.

`sync_released` is the order flow's computation for released orders: the documents stored since the release (a
credit memo, the header read again) merged into the facts - Refunded Orders still owed are sent, the facts
written, and those documents dropped again (the facts hold what they said).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import redis

from flows.order_locking import confirm_held, one_computation_per_order
from flows.order_reading import dated, parse_stored, record_problems
from state.fingerprints import FingerprintStore
from state.keys import RedisKeys
from sync.operations import Operation
from sync.orders.compacted import released_header, released_result
from sync.orders.facts import OrderFacts, decode_facts
from sync.orders.lifecycle import profile_key
from sync.orders.records import parse_order_documents
from sync.orders.refund_ids import decided_refunds
from sync.orders.state import stored_documents

if TYPE_CHECKING:
    from flows.order_context import OrderContext

log = logging.getLogger(__name__)
LOCKED_AT_ONCE = 50  # orders whose locks one release step holds (each order's write confirms them all)


def release_due(ctx: OrderContext, now: float | None = None, limit: int = 500) -> list[str]:
    """Release the orders whose grace period has passed (at most `limit`); returns those released."""
    now = time.time() if now is None else now
    due = ctx.state.due_for_release(now, limit)
    released: list[str] = []
    for start in range(0, len(due), LOCKED_AT_ONCE):
        released.extend(_release(due[start:start + LOCKED_AT_ONCE], ctx, now=now))
    return released


@one_computation_per_order
def _release(numbers: list[str], ctx: OrderContext, *, now: float) -> dict[str, bool]:
    """One transaction for these orders (their locks held), watching their document hashes: a document stored
    meanwhile (`state.orders.put_documents` writes the hash first) aborts it, and it is tried again."""
    keys = RedisKeys(ctx.key_prefix)
    fingerprints = FingerprintStore(ctx.redis, ctx.key_prefix)
    released: dict[str, bool] = {}

    def step(pipe: redis.client.Pipeline) -> None:
        released.clear()
        held = ctx.state.release_reads(numbers)  # read on another connection: the watch covers it
        stored = {n: docs for n, (due, docs, _) in held.items() if due is not None and due <= now}
        parsed = {n: d for n, raw in stored.items()
                  if (d := parse_stored(n, stored_documents(raw), ctx, report=False)) is not None}
        parsed = dated(parsed, ctx)
        # released before: what is stored is what was read since (sync_released merges it into the facts), never
        # the whole order - its facts must not be rebuilt from it
        again = ctx.state.released(list(stored))
        pipe.multi()
        for number, raw in stored.items():
            if number in again:
                pipe.zrem(keys.orders_closing, number)
                continue
            docs = parsed.get(number)
            if docs is not None and (profile := profile_key(docs.order, ctx.mapping)) is not None:
                ctx.facts.record(docs, ctx.mapping, pipe)  # from the full documents: memo totals, event header
                ctx.state.mark_released(number, profile, pipe)
            computed = held[number][2]
            records = {f"order:{number}"} | {str(e["record"]) for e in computed.values() if e.get("record")}
            if computed:  # the ledger entries of its events, and their index
                pipe.delete(*[keys.ledger(k) for k in computed])
            pipe.delete(*[keys.ledger_index(r) for r in records])
            for slot, entry in raw.items():  # the poller's fingerprints of its documents
                resource = slot.split(":", 1)[0]
                key = _record(entry).get(getattr(ctx.mapping.resources, resource).key)
                if key not in (None, ""):
                    pipe.hdel(fingerprints.key(resource), str(key))
            ctx.state.drop_order(number, pipe)
            released[number] = True
        confirm_held()  # still the only computation of these orders: write, else none of it

    ctx.redis.transaction(step, *[ctx.state.doc_key(n) for n in numbers])
    if released:
        log.info("released the documents of %d closed order(s); their facts stay", len(released))
    return released


def _record(entry: str | bytes) -> dict[str, Any]:
    parsed = json.loads(entry)
    record = parsed.get("record")
    return record if isinstance(record, dict) else {}


def sync_released(numbers: dict[str, str], ctx: OrderContext, pipe: redis.client.Pipeline, *,
                  backfill: bool = False) -> list[Operation]:
    """The computation of released orders (number -> profile key), inside the order flow's locked `sync_orders`:
    writes on `pipe` (facts, the documents dropped), returns the operations to deliver."""
    stored = ctx.facts.client.pipeline(transaction=False)
    for number, profile in numbers.items():
        stored.hget(ctx.facts.key(profile), number)
    raws = dict(zip(numbers, stored.execute(), strict=True))
    snapshots = ctx.state.snapshots(list(numbers))
    outgoing: list[Operation] = []
    for number, profile in numbers.items():
        raw = raws[number]
        documents = snapshots[number].documents
        if not raw:  # its facts are gone (the customer erased): nothing of it counts any more
            ctx.state.drop_order(number, pipe)
            ctx.state.forget_released([number], pipe)
            continue
        facts: OrderFacts = decode_facts(number, profile, raw)
        late = [*documents.picks, *documents.invoices]
        if late:  # released once closed or cancelled: a dispatch document after that changes nothing it counts
            log.info("order %s was released: %d pick ticket(s) / invoice(s) read since change nothing", number,
                     len(late))
        parsed = parse_order_documents(documents.order, ctx.mapping, (), (), documents.credit_memos,
                                       known_header=released_header(facts))
        record_problems(ctx, parsed.problems, number)
        if parsed.documents is None:  # the header read again is invalid: its problems are registered
            continue
        docs = dated({number: parsed.documents}, ctx)[number]
        result, view, merged = released_result(facts, docs, documents.order is not None, ctx.mapping,
                                               backfill=backfill)
        record_problems(ctx, result.problems, number)
        refunds = decided_refunds(result, view)
        if refunds is not None:  # recorded before anything is sent; the store keeps what was decided first
            merged = merged.model_copy(update={"refund_order_id_memo": refunds.order_id_memo,
                                               "refund_composite_memos": tuple(sorted(refunds.composite))})
        ctx.facts.put(merged, pipe)
        waiting = any(memo.date is None for memo in docs.credit_memos)
        if not waiting:
            ctx.state.drop_order(number, pipe)  # the facts hold what they said
        outgoing.extend(result.operations)
    return outgoing
