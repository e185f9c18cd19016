"""Senders for catalog and stock operations: Klaviyo catalog bulk jobs on the batch lane, PATCHes otherwise.

Kinds handled (entries of `delivery.registry.SENDERS`): `catalog_item_upsert`,
`catalog_variant_upsert`, `variant_inventory`. One operation -> one call (the fast lane's PATCH); more ->
bulk jobs of at most 100 rows, with at most `MAX_JOBS_IN_FLIGHT` jobs in flight fleet-wide (counted in
Redis; rows over the cap come back through the delayed schedule).

Newest figure wins, at three moments:
1. right before each job request, rows are filtered again against the ledger and against the newest
   figure planned for the variant (`StockState.planned`): a row older than either is dropped, since what
   Klaviyo holds, or what is on its way, is newer;
2. stock is sent only by `variant_inventory` and by variant *creation*: a refresh of an existing variant
   never carries `inventory_quantity` (gap 1 of the domain: a catalog upsert's figure may be stale or 0);
3. a bulk job is applied by Klaviyo some time between its creation and its `complete` status, so a fast
   PATCH may land before a job row computed earlier (the Klaviyo sandbox applies a job's rows when it
   completes; Klaviyo documents no ordering between jobs and single writes). When the job is read back
   complete, every row that carried stock is compared with the newest figure computed for its variant; if
   a newer one exists the row may have overwritten it, so the newest figure is PATCHed again (and again
   while a yet newer one appears), and the ledger keeps the newest version only. A repair Klaviyo does not
   take at once (the fleet's budget spent, a 429, a timeout) goes to delivery as a `variant_inventory`
   operation: nothing else would send that figure.
Per-row job errors go to dead letters, except on a create job a row Klaviyo refused because the object is
already there (a job row has no HTTP status: told by its error code and detail, `already_exists`): it is
marked known and re-sent as an update - a variant with its newest figure - so a full re-sync into a Klaviyo
that already holds the catalog (state lost, onboarding) dead-letters nothing. Single creates the same.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from config.task_names import CHECK_CATALOG_JOB, deliver_task
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import (
    EndpointParkedError,
    KlaviyoError,
    KlaviyoErrorItem,
    PermanentError,
    RateLimitedLocally,
    TransientError,
    already_exists,
    creation_found_existing,
    row_of_pointer,
    try_again_in,
)
from connectors.klaviyo.limits import MAX_CATALOG_BULK_ROWS
from delivery.envelope import envelope
from delivery.results import SendResult, ledger_entry
from delivery.runtime import Runtime, runtime
from delivery.senders.rows import chunks
from state.dead_letters import Attempt
from state.ledger import Ledger
from state.stock import StockState
from sync.ledger import LedgerEntry
from sync.operations import Operation
from sync.stock.coalesce import newest_wins
from sync.stock.urgency import inventory_key, inventory_operation

log = logging.getLogger(__name__)

JOB_ROWS = MAX_CATALOG_BULK_ROWS
MAX_JOBS_IN_FLIGHT = 500
JOB_POLL_SECONDS = 1.0
CAP_RETRY_SECONDS = 2.0
ITEM_WAIT_SECONDS = 2.0
ITEM_WAIT_ROUNDS = 60
REPAIR_ROUNDS = 5


def stock_state(rt: Runtime) -> StockState:
    return rt.stores.stock


def record_if_newer(ledger: Ledger, entries: list[LedgerEntry]) -> None:
    """Ledger writes for stock: a late job's row must not replace the version a fast PATCH recorded."""
    held = ledger.delivered_versions([e.key for e in entries])
    ledger.record([e for e in entries if e.key not in held or newest_or_equal(held[e.key], e.version)])


def newest_or_equal(held: str | None, candidate: str | None) -> bool:
    return held is None or (candidate is not None and candidate >= held)


def _still_newest(
    ops: list[Operation], ledger: Ledger, state: StockState
) -> tuple[list[Operation], list[str]]:
    """Stock rows not overtaken: by the ledger (delivered same or newer) or by a newer planned figure."""
    delivered = ledger.delivered_versions([op.key for op in ops])
    planned = state.planned([op.payload["external_id"] for op in ops])
    keep: list[Operation] = []
    dropped: list[str] = []
    for op in ops:
        plan = planned.get(op.payload["external_id"])
        # a reconciliation repair re-sends what the ledger holds (Klaviyo lost or changed it): only a newer
        # planned figure overtakes it
        overtaken = (not op.repair and op.key in delivered and not newest_wins(delivered[op.key], op.version)) or (
            plan is not None and op.version is not None and plan[1] > op.version
        )
        (dropped.append(op.key) if overtaken else keep.append(op))
    return keep, dropped


def _later(result: SendResult, ops: list[Operation], lane: str, delay: float) -> None:
    """Hand rows back to the delayed schedule as a new delivery envelope."""
    if ops:
        result.followups.append((deliver_task(ops[0].kind), [envelope(ops, lane)], delay))


def _start_job(
    kind: str,
    rows: list[Operation],
    payloads: list[dict[str, Any]],
    client: KlaviyoClient,
    result: SendResult,
    carried: dict[str, str] | None = None,
) -> bool:
    """Create one bulk job if a slot is free (False otherwise); its read-back is a follow-up."""
    rt = runtime()
    state = stock_state(rt)
    if state.jobs_in_flight() >= MAX_JOBS_IN_FLIGHT:
        return False
    start = {
        "item-create": client.bulk_create_items,
        "item-update": client.bulk_update_items,
        "variant-create": client.bulk_create_variants,
        "variant-update": client.bulk_update_variants,
    }[kind]
    try:
        job_id = start(payloads)
    except PermanentError as exc:
        if len(rows) == 1:
            raise
        for index, op in enumerate(rows):
            if index in (exc.payload_rows or {}) or not exc.payload_rows:
                result.rejected.append((op, exc))
        good = [op for i, op in enumerate(rows) if exc.payload_rows and i not in exc.payload_rows]
        _later(result, good, client.lane, 0.1)
        return True
    state.job_started(job_id)
    args = [kind, job_id, [op.model_dump(mode="json") for op in rows], client.lane, carried or {}]
    result.followups.append((CHECK_CATALOG_JOB, args, JOB_POLL_SECONDS))
    return True


def _send_jobs(
    kind: str,
    ops: list[Operation],
    payload_of: Any,
    client: KlaviyoClient,
    result: SendResult,
    carried_of: Any = None,
) -> None:
    for n, chunk in enumerate(chunks(ops, JOB_ROWS)):
        payloads = [payload_of(op) for op in chunk]
        carried = carried_of(chunk, payloads) if carried_of else None
        if not _start_job(kind, chunk, payloads, client, result, carried):
            rest = [op for c in chunks(ops, JOB_ROWS)[n:] for op in c]
            _later(result, rest, client.lane, CAP_RETRY_SECONDS)
            return


# --- variant_inventory ------------------------------------------------------------------------------


def send_variant_inventory(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    """One figure: PATCH now. Several: bulk variant update jobs of the figures still newest right now."""
    rt = runtime()
    state = stock_state(rt)
    known = state.created("variant", [op.payload["external_id"] for op in ops])
    # A variant Klaviyo does not hold yet gets its figure from its creation (which reads the newest one).
    result.skipped.extend(op.key for op in ops if op.payload["external_id"] not in known)
    todo = [op for op in ops if op.payload["external_id"] in known]
    if len(ops) == 1 and todo:
        todo, dropped = _still_newest(todo, rt.ledger, state)
        result.skipped.extend(dropped)
        if not todo:
            return
        op = todo[0]
        state.patch_started(op.payload["external_id"], op.version or "")
        try:
            resp = client.update_catalog_variant(
                op.payload["external_id"], {"inventory_quantity": op.payload["inventory_quantity"]}
            )
        except PermanentError as exc:
            if exc.status != 404:
                raise
            result.skipped.append(op.key)  # deleted meanwhile: a later creation carries the figure
            return
        result.delivered.append(ledger_entry(op, resp.status, "catalog-variants:update", resp.data))
        return

    def payload(op: Operation) -> dict[str, Any]:
        return {key: op.payload[key] for key in ("external_id", "inventory_quantity")}

    def carried(chunk: list[Operation], _: list[dict[str, Any]]) -> dict[str, str]:
        return {op.payload["external_id"]: op.version or "" for op in chunk}

    # Checked right before each job's request: the ledger may have moved while this envelope waited, or while
    # its earlier jobs left.
    for chunk in chunks(todo, JOB_ROWS):
        fresh, late = _still_newest(chunk, rt.ledger, state)
        result.skipped.extend(late)
        if fresh:
            _send_jobs("variant-update", fresh, payload, client, result, carried)


# --- catalog items and variants ---------------------------------------------------------------------


def send_catalog_items(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    """Item upserts: create what Klaviyo does not hold yet, update the rest."""
    state = stock_state(runtime())
    known = state.created("item", [op.payload["external_id"] for op in ops])
    if len(ops) == 1:
        op = ops[0]
        resp = client.upsert_catalog_item(op.payload)
        state.mark_created("item", [op.payload["external_id"]])
        result.delivered.append(ledger_entry(op, resp.status, "catalog_item_upsert", resp.data))
        return
    # a repair creates what Klaviyo lost, whatever the fleet remembers creating
    creates = [op for op in ops if op.payload["external_id"] not in known or op.repair]
    updates = [op for op in ops if op.payload["external_id"] in known and not op.repair]
    _send_jobs("item-create", creates, lambda op: op.payload, client, result)
    _send_jobs("item-update", updates, lambda op: op.payload, client, result)


def _variant_create_payload(op: Operation, figure: tuple[int, str] | None) -> dict[str, Any]:
    quantity = figure[0] if figure else int(op.payload.get("inventory_quantity", 0))
    return {**op.payload, "inventory_quantity": quantity}


def _variant_update_payload(op: Operation) -> dict[str, Any]:
    # Never stock on a refresh: variant_inventory owns it after creation (a newer figure may be live).
    return {k: v for k, v in op.payload.items() if k != "inventory_quantity"}


def send_catalog_variants(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    """Variant upserts: creations carry the newest ATS figure; updates never carry stock."""
    rt = runtime()
    state = stock_state(rt)
    ids = [op.payload["external_id"] for op in ops]
    known = state.created("variant", ids)
    items = state.created("item", [op.payload["item_external_id"] for op in ops])
    # a repair creates what Klaviyo lost, whatever the fleet remembers creating
    updates = [op for op in ops if op.payload["external_id"] in known and not op.repair]
    creates = [op for op in ops if op.payload["external_id"] not in known or op.repair]
    waiting = [op for op in creates if op.payload["item_external_id"] not in items]
    creates = [op for op in creates if op.payload["item_external_id"] in items]
    if waiting:  # the item's creation job has not completed yet: create the variant after it
        gave_up = [op for op in waiting if state.count_wait(op.key) > ITEM_WAIT_ROUNDS]
        err = PermanentError(
            "the variant's catalog item was never created in Klaviyo", status=404, endpoint="catalog-bulk"
        )
        result.rejected.extend((op, err) for op in gave_up)
        _later(result, [op for op in waiting if op not in gave_up], client.lane, ITEM_WAIT_SECONDS)
    if len(ops) == 1 and len(creates) + len(updates) == 1:
        _send_one_variant(ops[0], bool(creates), client, state, result)
        return

    figures = state.figures([op.payload["external_id"] for op in creates])

    def create_payload(op: Operation) -> dict[str, Any]:
        return _variant_create_payload(op, figures.get(op.payload["external_id"]))

    def carried(chunk: list[Operation], _: list[dict[str, Any]]) -> dict[str, str]:
        return {e: figures[e][1] for op in chunk if (e := op.payload["external_id"]) in figures}

    _send_jobs("variant-create", creates, create_payload, client, result, carried)
    _send_jobs("variant-update", updates, _variant_update_payload, client, result)


def _send_one_variant(
    op: Operation, create: bool, client: KlaviyoClient, state: StockState, result: SendResult
) -> None:
    external_id = op.payload["external_id"]
    if create:
        figure = state.figure(external_id)
        landed = figure[1] if figure else ""
        try:
            resp = client.create_catalog_variant(_variant_create_payload(op, figure))
        except PermanentError as exc:
            if not creation_found_existing(exc):
                raise
            # Klaviyo holds it already: its attributes go as an update, which never carries stock, so
            # no figure landed - the newest one computed follows as a PATCH below
            resp = client.update_catalog_variant(_variant_update_payload(op))
            landed = ""
        state.mark_created("variant", [external_id])
        _after_stock_landed(runtime(), client, {external_id: landed}, created=True)
    else:
        resp = client.update_catalog_variant(_variant_update_payload(op))
    result.delivered.append(ledger_entry(op, resp.status, "catalog_variant_upsert", resp.data))


# --- read-back of a job -----------------------------------------------------------------------------


def check_catalog_job(
    rt: Runtime, kind: str, job_id: str, operations: list[dict[str, Any]], lane: str, carried: dict[str, str]
) -> None:
    """Poll a catalog job; when complete: ledger, known objects, dead letters, and stock repair."""
    client = rt.client(lane)
    attrs = _finished_job(rt, client, [kind, job_id, operations, lane, carried])
    if attrs is None:
        return
    ops = [Operation.model_validate(o) for o in operations]
    state = stock_state(rt)
    state.job_finished(job_id)
    failed: dict[int, dict[str, Any]] = {}
    for error in attrs.get("errors") or []:
        row = row_of_pointer(KlaviyoErrorItem.from_json(error).pointer)
        if row is not None and 0 <= row < len(ops):
            failed[row] = error
    # A job row carries no HTTP status: "already exists" is told by its code and detail (`already_exists`).
    creating = kind.endswith("create")
    existing = [i for i, e in failed.items() if creating and already_exists(e)]
    object_kind = "item" if kind.startswith("item") else "variant"
    done = [op for i, op in enumerate(ops) if i not in failed or i in existing]
    if creating:  # rows found existing too: Klaviyo holds them, later syncs go straight to updates
        state.mark_created(object_kind, [op.payload["external_id"] for op in done])
    applied = [op for i, op in enumerate(ops) if i not in failed]
    answer = {"data": {"id": job_id, "type": kind}}
    entries = [ledger_entry(op, 200, f"catalog-{kind}-job", answer) for op in applied]
    if kind == "variant-update" and all(op.kind == "variant_inventory" for op in ops):
        record_if_newer(rt.ledger, entries)
    else:
        rt.ledger.record(entries)
    now = time.time()
    for i, error in failed.items():
        if i in existing:
            continue
        attempt = Attempt(
            at=now,
            status=error.get("status"),
            endpoint=f"catalog-{kind}-job",
            error=str(error.get("detail") or "job row error"),
            errors=[{k: error.get(k) for k in ("code", "title", "detail", "source")}],
        )
        rt.dead_letters.add(
            deliver_task(ops[i].kind),
            lane,
            ops[i].kind,
            [ops[i].model_dump(mode="json")],
            [attempt],
            f"catalog job {job_id} reported an error for this row",
        )
    if existing:
        _update_existing(rt, kind, [ops[i] for i in existing], lane)
    landed = {e: v for e, v in carried.items() if any(op.payload["external_id"] == e for op in applied)}
    if kind == "variant-create":  # created without a figure: stock as computed since, if any
        for op in applied:
            landed.setdefault(op.payload["external_id"], "")
    _after_stock_landed(rt, client, landed, created=kind == "variant-create")


def _finished_job(rt: Runtime, client: KlaviyoClient, args: list[Any]) -> dict[str, Any] | None:
    """The job's attributes once Klaviyo finished it; else None, and the read is scheduled again: at its turn
    in the endpoint's line when the budget refused it (not a failure of the task), when a park ends, or a
    poll interval on."""
    kind, job_id, lane = args[0], args[1], args[3]
    delay = JOB_POLL_SECONDS
    try:
        job = client.get_catalog_job(kind, job_id)
    except (RateLimitedLocally, EndpointParkedError, TransientError) as exc:
        delay = try_again_in(exc, JOB_POLL_SECONDS * 2, time.time())
    else:
        attrs = job.get("attributes", {}) if isinstance(job, dict) else {}
        if attrs.get("status") in ("complete", "cancelled"):
            return dict(attrs)
    rt.delayed.add(CHECK_CATALOG_JOB, args, lane, time.time() + max(0.05, delay))
    return None


def _update_existing(rt: Runtime, kind: str, rows: list[Operation], lane: str) -> None:
    """Rows a create job found already in Klaviyo (already marked known): the same rows again, now as
    updates. A variant's update never carries stock and its creation's figure did not land, so the newest
    figure computed for each goes too, as `variant_inventory` (which skipped it while the variant was
    unknown): otherwise a variant Klaviyo held before the fleet's state was lost keeps a stale figure."""
    log.info("catalog %s job: %s rows already in Klaviyo, sent again as updates", kind, len(rows))
    now = time.time()
    rt.delayed.add(deliver_task(rows[0].kind), [envelope(rows, lane)], lane, now)
    if kind != "variant-create":
        return
    figures = stock_state(rt).figures([op.payload["external_id"] for op in rows])
    stock = [
        inventory_operation(external_id, quantity, version, "batch", f"variant:{external_id}")
        for external_id, (quantity, version) in figures.items()
    ]
    if stock:
        rt.delayed.add(deliver_task("variant_inventory"), [envelope(stock, lane)], lane, now)


def _after_stock_landed(
    rt: Runtime, client: KlaviyoClient, landed: dict[str, str], created: bool = False
) -> None:
    """Rows that set stock with version `landed[id]` may have overwritten a newer figure: a PATCH of a newer
    version started meanwhile (updates), or any newer figure (creations: stock PATCHes skip variants not yet
    created). Then PATCH the newest figure, again while a newer one appears (a racing PATCH is followed).
    Read in two round trips for the whole job (the PATCHes started, the figures), not two per row; once
    Klaviyo or the budget refuses one repair, the rest are handed on with it (`_repair_later`) rather than
    each waiting for the budget in turn."""
    state = stock_state(rt)
    if not created:
        patched = state.patched_versions(list(landed))
        landed = {e: v for e, v in landed.items() if (p := patched.get(e)) is not None and p > v}
    figures = state.figures(list(landed))
    later: list[Operation] = []
    refused: KlaviyoError | None = None
    for external_id, sent in landed.items():
        figure = figures.get(external_id)
        for _ in range(REPAIR_ROUNDS):
            if figure is None or not figure[1] > sent:
                break
            op = Operation(
                kind="variant_inventory",
                key=inventory_key(external_id),
                lane="batch",
                version=figure[1],
                payload={"external_id": external_id, "inventory_quantity": figure[0]},
                # after an update job the ledger may hold the very version the job's row overwrote
                repair=not created,
            )
            if refused is not None:
                later.append(op)
                break
            state.patch_started(external_id, figure[1])
            try:
                resp = client.update_catalog_variant(external_id, {"inventory_quantity": figure[0]})
            except KlaviyoError as exc:
                refused = exc
                later.append(op)
                break
            record_if_newer(rt.ledger, [ledger_entry(op, resp.status, "catalog-variants:update", resp.data)])
            sent = figure[1]
            figure = state.figure(external_id)  # a newer one computed while this PATCH was on its way
    if refused is not None:
        _repair_later(rt, later, refused)


def _repair_later(rt: Runtime, ops: list[Operation], exc: KlaviyoError) -> None:
    """Stock repairs Klaviyo did not take now (the fleet's budget spent, a 429, a timeout): handed to delivery
    as `variant_inventory` operations (a bulk update job for several), never dropped. Nothing else would send
    these figures: their own operations were skipped while the variants were not created, or a figure equals
    the one last planned (a figure of the same quantity is not planned again), and the ledger may hold the
    version a job row overwrote. The delivery engine waits for the budget, retries or dead-letters them; a
    newer figure planned meanwhile overtakes one (`_still_newest`)."""
    log.warning("%d stock repair(s) not sent now (%s): handed to delivery, e.g. %s", len(ops), exc,
                ops[0].payload["external_id"])
    now = time.time()
    due = now + max(0.1, try_again_in(exc, JOB_POLL_SECONDS, now))
    for chunk in chunks(ops, JOB_ROWS):
        rt.delayed.add(deliver_task(chunk[0].kind), [envelope(chunk, chunk[0].lane)], chunk[0].lane, due)
