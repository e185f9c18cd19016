"""The stock and catalog flow: style / inventory / location records in, catalog and stock operations out.

Inventory: each row is stored (newest `last_mod` per SKU and warehouse), the SKU's available-to-sell is
recomputed over all its stored rows, and the figure goes on the lane its change deserves: fast ->
`submit` at once; batch -> merged into the debounced pending figures, which `bcsync.flush_stock` (beat,
every second) sends as bulk variant updates once quiet for `stock.debounce_seconds`.
Styles: catalog operations; upserts wait in the catalog outbox and leave in bulk jobs of 100 rows with
the same flush; retirements are single calls on the batch lane.
Locations: stored; a changed lookup re-computes every SKU (a warehouse made sellable or not). Stock read
before any location reads the lookup from Blue Cherry first.
The REST path (`handle_change`) and the CSV path (`bcsync.stock_records`, fed by `workers/csv_drops.py`)
run the same functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from config.mapping import Mapping, get_mapping
from connectors.bluecherry.client import BlueCherryClient
from connectors.bluecherry.errors import BlueCherryError
from delivery.envelope import envelope
from delivery.publish import publish_envelopes, submit
from delivery.runtime import Runtime, runtime
from delivery.senders.catalog import JOB_ROWS, stock_state
from state.stock import StockState
from sync.catalog.records import RecordError, SkuKey
from sync.catalog.transform import catalog_operations
from sync.changes import ChangeEvent
from sync.operations import Operation
from sync.stock.ats import (
    AtsFigure,
    StockConfigError,
    check_formula,
    compute_ats,
    parse_inventory_row,
    sellable_warehouses,
)
from sync.stock.coalesce import PendingFigure, due, merge
from sync.stock.plan import key_only_external_ids, plan_stock
from sync.stock.urgency import inventory_operation

log = logging.getLogger(__name__)

FLUSH_STOCK_FIGURES = 5000  # due figures sent per flush (50 jobs); the rest go with the next tick
FLUSH_CATALOG_ROWS = 5000  # catalog rows packed per flush (50 jobs); the rest wait for the next tick
CATALOG_ORDER = ("catalog_item_upsert", "catalog_variant_upsert")  # items before their variants


# --- entry points -----------------------------------------------------------------------------------


def handle_change(event: ChangeEvent) -> None:
    """A poller change event of a style, inventory or location record."""
    ingest(event.resource, [event.record], datetime.now(UTC))



def ingest(
    resource: str, records: list[dict[str, Any]], observed_at: datetime, rt: Runtime | None = None
) -> None:
    rt = rt or runtime()
    mapping = get_mapping()
    if resource == "inventory":
        ingest_inventory(records, observed_at, mapping, rt)
    elif resource == "style":
        ingest_styles(records, mapping, rt)
    elif resource == "location":
        if store_locations(records, mapping, rt):
            recompute_all(observed_at, mapping, rt)
    else:
        log.warning("tasks.stock does not handle %s records; %s acknowledged", resource, len(records))


def record_confirmed_units(sku: SkuKey, ref: str, units: float, at: float | None = None) -> None:
    """Feed for the dynamic high-demand rule: units of `sku` confirmed on an order line `ref` (an order
    flow calls this; a line re-read with the same `ref` and units counts once)."""
    window = get_mapping().stock.high_demand_window_hours
    stock_state(runtime()).record_confirmed(sku, ref, units, at or time.time(), window)


# --- inventory ---------------------------------------------------------------------------------------


def ingest_inventory(
    raws: Iterable[dict[str, Any]], observed_at: datetime, mapping: Mapping, rt: Runtime
) -> None:
    fields = mapping.fields.inventory
    last_mod_field = mapping.resources.inventory.last_mod
    state = stock_state(rt)
    touched: set[SkuKey] = set()
    for raw in raws:  # rows are kept first, whatever happens next: nothing read is ever lost
        try:
            row = parse_inventory_row(raw, fields, last_mod_field)
        except RecordError as exc:
            rt.exceptions.record("invalid_record", exc.record, exc.reason)
            continue
        stamp = row.last_mod.isoformat() if row.last_mod else ""
        state.store_row(row.sku, row.warehouse, raw, stamp)
        touched.add(row.sku)
    sellable = _sellable(mapping, state, rt)
    if sellable is None:
        return
    for sku in sorted(touched):
        rows = [parse_inventory_row(r, fields, last_mod_field) for r in state.rows(sku)]
        figures = compute_ats(rows, sellable, observed_at, mapping.stock.formula, skus=[sku])
        plan_figure(figures[sku], mapping, state, rt)


def store_locations(records: Iterable[dict[str, Any]], mapping: Mapping, rt: Runtime) -> int:
    state = stock_state(rt)
    code_field = mapping.fields.location.code
    stored = 0
    for raw in records:
        code = str(raw.get(code_field) or "").strip()
        if not code:
            rt.exceptions.record("invalid_record", "location:?", f"no location code in '{code_field}'")
            continue
        state.store_location(code, raw)
        stored += 1
    return stored


def _sellable(mapping: Mapping, state: StockState, rt: Runtime) -> frozenset[str] | None:
    """The sellable warehouses; when no location was read yet (stock polled before the hourly location
    lookup), read the lookup from Blue Cherry now instead of computing figures over no warehouse."""
    try:
        check_formula(mapping.stock.formula, mapping.fields.inventory)
        if not state.locations() and not mapping.stock.sellable_warehouses:
            try:
                with BlueCherryClient.from_settings(mapping=mapping) as client:
                    store_locations(client.locations(), mapping, rt)
            except BlueCherryError as exc:
                log.warning("could not read the location lookup from Blue Cherry: %s", exc)
        return sellable_warehouses(mapping.stock, state.locations(), mapping.fields.location)
    except StockConfigError as exc:
        # rows are stored: the figures follow as soon as the locations or the mapping are fixed
        rt.exceptions.record("catalog_error", "stock:configuration", str(exc), severity="critical")
        return None


def recompute_all(observed_at: datetime, mapping: Mapping, rt: Runtime) -> int:
    """A changed location lookup (a warehouse made sellable or not) re-computes every SKU's figure."""
    state = stock_state(rt)
    sellable = _sellable(mapping, state, rt)
    if sellable is None:
        return 0
    fields, last_mod_field = mapping.fields.inventory, mapping.resources.inventory.last_mod
    planned = 0
    for raws in state.all_rows():
        rows = [parse_inventory_row(r, fields, last_mod_field) for r in raws]
        if not rows:
            continue
        figures = compute_ats(rows, sellable, observed_at, mapping.stock.formula, skus=[rows[0].sku])
        planned += plan_figure(figures[rows[0].sku], mapping, state, rt) is not None
    return planned


def plan_figure(figure: AtsFigure, mapping: Mapping, state: StockState, rt: Runtime) -> Operation | None:
    """Decide and dispatch one SKU's new figure; returns the operation planned (None: nothing to do)."""
    by_key = key_only_external_ids(mapping.catalog)
    external_id = (by_key(figure.sku, figure.upc) if by_key else None) or state.variant_of(figure.sku)
    if not external_id:
        rt.exceptions.record(
            "catalog_error",
            f"sku:{figure.sku.text}",
            "stock for a SKU whose style was not read yet (no catalog variant)",
            severity="warning",
        )
        return None
    version = figure.version.encode()
    if not state.set_figure(external_id, figure.quantity, version):
        return None  # a newer figure was already computed for this variant
    planned = state.planned([external_id]).get(external_id)
    window = mapping.stock.high_demand_window_hours
    plan = plan_stock(
        [figure],
        mapping.stock,
        lambda _sku, _upc: external_id,
        delivered={figure.sku: planned[0]} if planned else {},
        recent_confirmed_units={figure.sku: state.confirmed_units(figure.sku, window)},
    )
    if not plan.operations:
        return None
    op = plan.operations[0]
    state.set_planned(external_id, figure.quantity, version)
    if op.lane == "fast":
        state.drop_pending(external_id)  # older than this figure: it would be dropped at send time anyway
        submit([op])
    else:
        state.put_pending(
            merge(state.held_pending(external_id), external_id, figure.quantity, version, time.time())
        )
    return op


# --- styles ------------------------------------------------------------------------------------------


def ingest_styles(raws: list[dict[str, Any]], mapping: Mapping, rt: Runtime) -> None:
    state = stock_state(rt)
    plan = catalog_operations(raws, mapping, lane="batch")
    for problem in plan.problems:
        rt.exceptions.record("catalog_error", problem.record, problem.reason)
    variants = {
        op.record.split(":", 2)[2]: op.payload["external_id"]
        for op in plan.operations
        if op.kind == "catalog_variant_upsert" and op.record and op.record.count(":") >= 2
    }
    state.remember_variants(variants)
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
    state.claims.reclaim_stale()
    ready = due(state.pending(), now, mapping.stock.debounce_seconds)[:FLUSH_STOCK_FIGURES]
    figures_claim, figures = state.claim_pending(ready)
    # if this claim fails, the figures' claim is reclaimed later: nothing is lost either way
    catalog_claim, catalog = state.claim_catalog(FLUSH_CATALOG_ROWS)
    with state.claims.publishing(figures_claim, catalog_claim):  # released once published, else put back
        return publish_envelopes(_flush_envelopes(catalog, figures))


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
