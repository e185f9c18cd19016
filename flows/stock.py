"""The stock and catalog flow: style / inventory / location records in, catalog and stock operations out.

Inventory: each record comes with its version (the poller's change version; for a CSV report drop, one
built from the report's as-of time: `sync.stock.versions`). Per SKU, storing its rows (newest version per
warehouse) and recomputing its available-to-sell over all its stored rows is ONE atomic step
(`store_and_compute`, on `StockState.update_sku`): concurrent workers never keep a stale row nor compute
from rows that were never stored together. The figure's version derives from every row of the SKU and every
location record (`FigureVersion`), so figures are ordered by the ERP, never by a worker's clock or by
arrival. The figure then goes on the lane its change deserves (`plan_figure`): fast -> `submit` at once;
batch -> merged into the debounced pending figures, which `bcsync.flush_stock` (beat, every second) sends
as bulk variant updates once quiet for `stock.debounce_seconds`.
Styles: catalog operations; upserts wait in the catalog outbox and leave in bulk jobs of 100 rows with
the same flush; retirements are single calls on the batch lane. Figures and rows leave in whole 100-row jobs,
a tail once it waited `bulk_max_wait_seconds` (flows/stock_chunks.py).
Locations: stored newest version first; a newer one re-computes every SKU, each in its own atomic step (a
warehouse made sellable or not makes a newer figure), a few seconds' walk a task (`recompute_sweep`). Stock
read before any location reads the lookup from Blue Cherry first.
The REST path (`handle_change`) and the CSV path (`bcsync.stock_records` -> `ingest_report`, fed by
`workers/csv_drops.py`) run the same functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from config.mapping import Mapping, get_mapping
from config.task_names import FLUSH_STOCK, RECOMPUTE_STOCK_SWEEP
from connectors.bluecherry.client import BlueCherryClient
from connectors.bluecherry.errors import BlueCherryError
from delivery.envelope import envelope
from delivery.publish import publish, publish_envelopes, submit
from delivery.runtime import Runtime, runtime
from delivery.senders.catalog import JOB_ROWS, stock_state
from flows.stock_chunks import whole_figures, whole_rows
from flows.stock_variants import check_variant_ids, recheck_unjudged
from state.stock import SkuStep, StockState
from state.stock_scans import ScanRows, row_entry
from sync.catalog.records import RecordError, SkuKey
from sync.catalog.transform import catalog_operations
from sync.changes import ChangeEvent
from sync.misfits import record_misfits
from sync.operations import Operation
from sync.stock.ats import (
    AtsFigure,
    StockConfigError,
    check_formula,
    parse_inventory_row,
    sellable_warehouses,
    stored_figure,
)
from sync.stock.coalesce import PendingFigure, due, merge, newest_wins
from sync.stock.plan import key_only_external_ids, plan_stock
from sync.stock.rows import Versioned, decode_all, encode, merge_newest
from sync.stock.urgency import inventory_operation
from sync.stock.versions import report_version

log = logging.getLogger(__name__)

FLUSH_STOCK_FIGURES = 5000  # due figures sent per flush (50 jobs); the rest go with the next tick
FLUSH_CATALOG_ROWS = 5000  # catalog rows packed per flush (50 jobs); the rest wait for the next tick
CATALOG_ORDER = ("catalog_item_upsert", "catalog_variant_upsert")  # items before their variants

Record = tuple[dict[str, Any], str]  # a raw record and its version
RECOMPUTE_CHUNK = 500  # keys walked (SCAN's COUNT) per step of a recompute, its SKUs asked at once whether held
RECOMPUTE_STEP_SECONDS = 5.0  # one recompute task sweeps this long, then hands the rest on (task time limits)
RECOMPUTE_LANE = "batch"  # the lane of location records (sync.changes): every SKU again is bulk work


# --- entry points -----------------------------------------------------------------------------------


def handle_change(event: ChangeEvent) -> None:
    """A poller change event of a style, inventory or location record, ordered by its change version (an
    inventory row settles its entry in the poll cycle's stock scan: `flows/stock_complete.py`)."""
    scan = ScanRows(event.scan, [row_entry(event.key, event.version)]) if event.resource == "inventory" else None
    ingest(event.resource, [(event.record, event.version)], scan=scan)


def ingest_report(resource: str, records: list[dict[str, Any]], as_of: datetime, rt: Runtime | None = None,
                  scan: ScanRows | None = None) -> None:
    """Records of a CSV report drop (or any bulk read) true as of `as_of` (aware): each is versioned from its
    last_mod resolved against that time, or from the time itself when it has none (`report_version`). `scan`:
    the report's stock scan and each record's entry in it."""
    mapping = get_mapping()
    resource_mapping = getattr(mapping.resources, resource, None)
    field = resource_mapping.last_mod if resource_mapping is not None else "last_mod"
    zone = mapping.tenant.timezone
    ingest(resource, [(raw, report_version(raw.get(field), as_of, zone)) for raw in records], rt, scan)


def ingest(resource: str, records: list[Record], rt: Runtime | None = None, scan: ScanRows | None = None) -> None:
    rt = rt or runtime()
    mapping = get_mapping()
    if resource == "inventory":
        ingest_inventory(records, mapping, rt, scan)
    elif resource == "style":
        ingest_styles([raw for raw, _ in records], mapping, rt)
    elif resource == "location":
        newer = store_locations(records, mapping, rt)
        state = stock_state(rt)
        locations = state.locations_digest()
        # a message delivered again after its worker died part-way stores nothing newer: the recompute is
        # finished all the same (every SKU again: those done already give no new figure)
        if newer or state.locations_computed() != locations:
            recompute_sweep(locations, 0, rt)
    else:
        log.warning("tasks.stock does not handle %s records; %s acknowledged", resource, len(records))


def record_confirmed_units(sku: SkuKey, ref: str, units: float, at: float | None = None) -> None:
    """Feed for the dynamic high-demand rule: units of `sku` confirmed on an order line `ref` (an order
    flow calls this; a line re-read with the same `ref` and units counts once)."""
    window = get_mapping().stock.high_demand_window_hours
    stock_state(runtime()).record_confirmed(sku, ref, units, at or time.time(), window)


# --- inventory ---------------------------------------------------------------------------------------


def ingest_inventory(records: Iterable[Record], mapping: Mapping, rt: Runtime, scan: ScanRows | None = None) -> None:
    """Per SKU: store its rows and compute its figure over every stored row in one atomic step, then plan it -
    unless a stock scan still has rows of the SKU on their way (complete figures only: `flows/stock_complete.py`):
    then only its rows are stored, and its figure is neither computed nor recorded (a variant's creation would
    send the newest one recorded) until whoever completes it computes it."""
    state = stock_state(rt)
    by_sku = _rows_by_sku(records, mapping, rt)
    if not by_sku:
        return
    _read_locations_if_none(mapping, state, rt)
    scans, texts = rt.stores.stock_scans, sorted(sku.text for sku in by_sku)
    stored = [(scan.scan, entry) for entry in scan.entries] if scan is not None else []
    whole = scans.complete_with(stored, texts)  # complete once these rows are stored: one step, as ever
    figures: list[Settled] = []
    unknown: list[SkuKey] = []
    for sku in sorted(by_sku):
        settled = store_and_compute(sku.text, by_sku[sku], mapping, state, rt, hold=sku.text not in whole,
                                    unknown=unknown)
        if settled is not None:
            figures.append(settled)
    # only now, with its rows stored, does a row count as arrived; a SKU another worker completed meanwhile is
    # computed here (one said whole but held since - a later read touched it - is complete for every earlier one)
    released = scans.settle(stored, texts)
    for settled in figures:
        plan_figure(settled.figure, settled.external_id, mapping, state, rt)
    check_variant_ids([(f.figure.sku, f.external_id) for f in figures] + [(sku, None) for sku in unknown],
                      mapping, state, rt)
    recompute_skus([text for text in released if text not in whole], mapping, rt)


def _rows_by_sku(records: Iterable[Record], mapping: Mapping, rt: Runtime) -> dict[SkuKey, list[tuple[str, Versioned]]]:
    """The valid rows by SKU as (warehouse, row); an invalid one becomes an exception (nothing else)."""
    fields, last_mod_field = mapping.fields.inventory, mapping.resources.inventory.last_mod
    by_sku: dict[SkuKey, list[tuple[str, Versioned]]] = {}
    for raw, version in records:
        try:
            row = parse_inventory_row(raw, fields, last_mod_field, mapping.date_formats("inventory"))
        except RecordError as exc:
            rt.exceptions.record("invalid_record", exc.record, exc.reason)
            continue
        by_sku.setdefault(row.sku, []).append((row.warehouse, Versioned(raw, version)))
    return by_sku


@dataclass(frozen=True)
class Settled:
    """A figure recorded as its variant's newest, still to be planned."""

    figure: AtsFigure
    external_id: str


def store_and_compute(
    sku_text: str, incoming: list[tuple[str, Versioned]], mapping: Mapping, state: StockState, rt: Runtime,
    hold: bool = False, unknown: list[SkuKey] | None = None,
) -> Settled | None:
    """ONE atomic step of a SKU: keep the incoming rows newer than those stored, compute the figure over
    every stored row (`stored_figure`, versioned by every row and location record) and record it as the
    variant's newest figure. Without incoming rows (a location changed) only the figure is recomputed.
    Returns the figure to plan: one newly recorded, or - for a step that changed nothing, e.g. a task run
    again after a crash - the held figure if it is exactly this one and was never planned. `hold`: store the
    rows only (the SKU's figure waits for the rest of its rows: `ingest_inventory`). A figure stock finds no
    variant id for goes to `unknown` (judged against the catalog: `flows.stock_variants`)."""
    zone = mapping.tenant.timezone
    outcome: dict[str, Any] = {}

    def step(held_rows: dict[str, str], held_locations: dict[str, str]) -> SkuStep:
        outcome.clear()
        rows = decode_all(held_rows, zone)
        changed = merge_newest(rows, incoming)
        rows.update(changed)
        written = {warehouse: encode(row) for warehouse, row in changed.items()}
        if hold:
            return SkuStep(rows=written)
        try:
            figure = _figure_of(rows.values(), decode_all(held_locations).values(), mapping)
        except StockConfigError as exc:  # rows are kept: the figures follow once the configuration is fixed
            outcome["problem"] = exc
            return SkuStep(rows=written)
        external_id = _external_id(figure, state, mapping) if figure is not None else None
        if figure is None or external_id is None:
            outcome["unknown"] = figure
            return SkuStep(rows=written)
        outcome["settled"] = Settled(figure, external_id)
        if not changed and incoming:
            return SkuStep()  # nothing new stored: nothing to recompute
        return SkuStep(rows=written, figure=(external_id, figure.quantity, figure.version.encode()))

    decided, recorded = state.update_sku(sku_text, step)
    if "problem" in outcome:
        rt.exceptions.record("catalog_error", "stock:configuration", str(outcome["problem"]), severity="critical")
        return None
    if outcome.get("unknown") is not None:
        if unknown is not None:
            unknown.append(outcome["unknown"].sku)
        else:
            check_variant_ids([(outcome["unknown"].sku, None)], mapping, state, rt)
        return None
    settled: Settled | None = outcome.get("settled")
    if settled is None or recorded:
        return settled
    if decided.figure is None and _record_if_newer(settled, state):
        # rows stored already but never computed from: stored while held (the SKU was then released to a
        # worker that died before computing it), or by a step whose worker died before recording its figure
        return settled
    if _never_planned(settled, state):  # this very figure recorded, its worker gone before it was on its way
        return settled
    return None  # a newer (or this very) figure is already recorded and planned


def _figure_of(rows: Iterable[Versioned], locations: Iterable[Versioned], mapping: Mapping) -> AtsFigure | None:
    held = list(locations)
    check_formula(mapping.stock.formula, mapping.fields.inventory)
    sellable = sellable_warehouses(mapping.stock, [loc.raw for loc in held], mapping.fields.location)
    return stored_figure(rows, held, sellable, mapping.fields.inventory, mapping.resources.inventory.last_mod,
                         mapping.stock.formula, mapping.date_formats("inventory"))


def _external_id(figure: AtsFigure, state: StockState, mapping: Mapping) -> str | None:
    by_key = key_only_external_ids(mapping.catalog)
    return (by_key(figure.sku, figure.upc) if by_key else None) or state.variant_of(figure.sku)


def _record_if_newer(settled: Settled, state: StockState) -> bool:
    """Record a figure computed over rows that were already stored; False when it (or a newer one) is held.
    Nothing changed in the rows does not mean their figure was computed: a held step stores rows only."""
    return state.set_figure(settled.external_id, settled.figure.quantity, settled.figure.version.encode())


def _never_planned(settled: Settled, state: StockState) -> bool:
    """This very figure is the variant's newest recorded, and was never planned, or planned by a worker that
    died before it was on its way (`plan_figure`)."""
    version = settled.figure.version.encode()
    if state.figure(settled.external_id) != (settled.figure.quantity, version):
        return False
    planned, queued = state.plan_view(settled.external_id)
    return planned is None or planned[1] < version or (queued is not None and queued < version)


def store_locations(records: Iterable[Record], mapping: Mapping, rt: Runtime) -> int:
    """Keep each location record unless a newer version of it is held; returns how many were newer."""
    state = stock_state(rt)
    code_field = mapping.fields.location.code
    stored = 0
    for raw, version in records:
        code = str(raw.get(code_field) or "").strip()
        if not code:
            rt.exceptions.record("invalid_record", "location:?", f"no location code in '{code_field}'")
            continue
        stored += state.store_location(code, Versioned(raw, version))
    return stored


def _read_locations_if_none(mapping: Mapping, state: StockState, rt: Runtime) -> None:
    """When no location was read yet (stock polled before the hourly location lookup), read the lookup
    from Blue Cherry now instead of computing figures over no warehouse."""
    if mapping.stock.sellable_warehouses or state.locations():
        return
    try:
        with BlueCherryClient.from_settings(mapping=mapping) as client:
            records = client.locations()
            read_at = client.server_time or datetime.now(UTC)  # Blue Cherry's clock (HTTP Date) first
    except BlueCherryError as exc:
        log.warning("could not read the location lookup from Blue Cherry: %s", exc)
        return
    field, zone = mapping.resources.location.last_mod, mapping.tenant.timezone
    store_locations([(raw, report_version(raw.get(field), read_at, zone)) for raw in records], mapping, rt)


def recompute_sweep(digest: str, cursor: int = 0, rt: Runtime | None = None) -> int:
    """A newer location record (a warehouse made sellable or not) re-computes every SKU's figure with the stored
    locations whose digest is `digest`, from `cursor` on; returns the figures planned. A SKU a stock scan holds
    is left to its release (computed then, with these locations).

    One task sweeps for `RECOMPUTE_STEP_SECONDS`, then hands the rest on (`bcsync.stock.recompute_sweep` with
    its cursor): a catalog of any size finishes within the tasks' time limits, and a worker that dies part-way
    loses one step, which its message delivered again runs again. The locations are marked computed
    (`mark_locations_computed`) only at the walk's end. A sweep whose locations changed meanwhile stops: the
    newer change's own sweep recomputes every SKU with them."""
    rt = rt or runtime()
    mapping, state, scans = get_mapping(), stock_state(rt), rt.stores.stock_scans
    deadline = time.monotonic() + RECOMPUTE_STEP_SECONDS
    planned = 0
    while True:
        if state.locations_digest() != digest:
            log.info("stock recompute for locations %s stopped: a newer location change sweeps again", digest[:12])
            return planned
        cursor, chunk = state.sku_text_page(cursor, RECOMPUTE_CHUNK)
        held = scans.holding(chunk) if chunk else set()
        planned += recompute_skus([sku_text for sku_text in chunk if sku_text not in held], mapping, rt)
        if cursor == 0:
            state.mark_locations_computed(digest)
            return planned
        if time.monotonic() > deadline:
            publish(RECOMPUTE_STOCK_SWEEP, [digest, cursor], RECOMPUTE_LANE)
            return planned


def recompute_skus(sku_texts: Iterable[str], mapping: Mapping, rt: Runtime) -> int:
    """Re-compute these SKUs' figures from their stored rows, each SKU in its own atomic step, and plan those
    that are new (or recorded but never planned); returns the figures planned."""
    state = stock_state(rt)
    planned = 0
    seen: list[tuple[SkuKey, str | None]] = []
    unknown: list[SkuKey] = []
    for sku_text in sku_texts:
        settled = store_and_compute(sku_text, [], mapping, state, rt, unknown=unknown)
        if settled is not None:
            seen.append((settled.figure.sku, settled.external_id))
            planned += plan_figure(settled.figure, settled.external_id, mapping, state, rt) is not None
    check_variant_ids(seen + [(sku, None) for sku in unknown], mapping, state, rt)
    return planned


def plan_figure(
    figure: AtsFigure, external_id: str, mapping: Mapping, state: StockState, rt: Runtime
) -> Operation | None:
    """Decide and dispatch one SKU's figure, recorded as its variant's newest (`store_and_compute`);
    returns the operation planned (None: nothing to do, or a newer figure was computed meanwhile).
    A figure is planned (`plan_if_current`: the newest, nothing newer planned) before it is sent, so a later
    figure of the variant is routed against it; once on its way it is marked queued. A planned figure not
    queued was planned by a worker that died before sending it (or that is sending it now): what Klaviyo holds
    is then unknown, so the next figure - this very one, from the message delivered again - is sent whatever
    the planned one says (figures are whole quantities: sending one twice changes nothing)."""
    version = figure.version.encode()
    planned, queued = state.plan_view(external_id)
    on_its_way = planned is None or queued is None or queued >= planned[1]
    window = mapping.stock.high_demand_window_hours
    plan = plan_stock(
        [figure],
        mapping.stock,
        lambda _sku, _upc: external_id,
        delivered={figure.sku: planned[0]} if planned and on_its_way else {},
        recent_confirmed_units={figure.sku: state.confirmed_units(figure.sku, window)},
    )
    if not plan.operations:
        return None
    op = plan.operations[0]
    if not state.plan_if_current(external_id, figure.quantity, version):
        return None  # a newer figure was recorded meanwhile: its own planning decides
    if op.lane == "fast":
        # a pending figure older than this one would be dropped at send time anyway; a newer one stays
        state.fold_pending(external_id, lambda held: held if held and not newest_wins(held.version, version) else None)
        submit([op])
    else:
        now = time.time()
        state.fold_pending(external_id, lambda held: merge(held, external_id, figure.quantity, version, now))
    state.queued(external_id, figure.quantity, version)
    return op


# --- styles ------------------------------------------------------------------------------------------


def ingest_styles(raws: list[dict[str, Any]], mapping: Mapping, rt: Runtime) -> None:
    state = stock_state(rt)
    plan = catalog_operations(raws, mapping, lane="batch")
    for problem in plan.problems:
        rt.exceptions.record("catalog_error", problem.record, problem.reason)
        record_misfits(rt.exceptions, problem.misfits)  # a status the mapping does not name: once per value
    variants = {
        op.record.split(":", 2)[2]: op.payload["external_id"]
        for op in plan.operations
        if op.kind == "catalog_variant_upsert" and op.record and op.record.count(":") >= 2
    }
    state.remember_variants(variants)
    state.remember_catalog(plan.variant_ids, plan.styles)  # what stock's variant ids are checked against
    recheck_unjudged(mapping, state, rt)  # stock read before these styles is judged now
    state.queue_catalog(op for op in plan.operations if op.kind != "catalog_retire")
    retirements = [op for op in plan.operations if op.kind == "catalog_retire"]
    if retirements:
        submit(retirements)


# --- the flush ---------------------------------------------------------------------------------------


def flush(rt: Runtime, now: float | None = None) -> int:
    """Send due debounced figures and held catalog rows as batch envelopes; returns envelopes published.
    Both are claimed, published, then deleted (`state/claims.py`): a flush that dies in between loses
    nothing, its claims go back (at the start of a later flush, or from the worker's drainer)."""
    now = now if now is not None else time.time()
    state = stock_state(rt)
    mapping = get_mapping()
    max_wait = rt.settings.bulk_max_wait_seconds
    state.claims.reclaim_stale()
    debounce = mapping.stock.debounce_seconds
    # whole 100-row jobs; a tail once it has waited max_wait past its due time (flows/stock_chunks.py)
    ready, figures_due = whole_figures(due(state.pending(), now, debounce), now, debounce, max_wait, JOB_ROWS)
    figures_claim, figures = state.claim_pending(ready[:FLUSH_STOCK_FIGURES])
    # if this claim fails, the figures' claim is reclaimed later: nothing is lost either way
    held, since = state.held_catalog(FLUSH_CATALOG_ROWS + JOB_ROWS)
    aged = since is None or now - since >= max_wait
    rows = dict(list(whole_rows(held, JOB_ROWS, aged).items())[:FLUSH_CATALOG_ROWS])
    catalog_claim, catalog = state.claim_catalog_rows(rows) if rows else (None, [])
    catalog_due = (since or now) + max_wait if len(rows) < len(held) and not aged else None
    with state.claims.publishing(figures_claim, catalog_claim):  # released once published, else put back
        sent = publish_envelopes(_flush_envelopes(catalog, figures))
    _flush_tail_later(rt, state, [t for t in (figures_due, catalog_due) if t is not None], now)
    return sent


def _flush_tail_later(rt: Runtime, state: StockState, due_times: list[float], now: float) -> None:
    """A flush for the held tails when they are due: beat's flush-stock runs every second anyway, this is
    for a fleet whose beat is down (one scheduled at a time)."""
    if not due_times:
        return
    at = max(min(due_times), now + 0.2)
    if state.r.set(f"{state.outbox_key}:flush-due", "1", nx=True, ex=max(1, int(at - now) + 5)):
        rt.delayed.add(FLUSH_STOCK, [], "batch", at)


def _flush_envelopes(catalog: list[Operation], figures: list[PendingFigure]) -> list[dict[str, Any]]:
    """Catalog rows (items before variants), then stock figures, in bulk-job-sized batch envelopes."""
    stock_ops = [
        inventory_operation(f.external_id, f.quantity, f.version, "batch", f"variant:{f.external_id}")
        for f in figures
    ]
    envelopes: list[dict[str, Any]] = []
    for kind in CATALOG_ORDER:
        rows = [op for op in catalog if op.kind == kind]
        envelopes.extend(envelope(rows[i : i + JOB_ROWS], "batch") for i in range(0, len(rows), JOB_ROWS))
    envelopes.extend(
        envelope(stock_ops[i : i + JOB_ROWS], "batch") for i in range(0, len(stock_ops), JOB_ROWS)
    )
    return envelopes
