"""Complete figures only: a SKU's figure is computed and sent once every row of it that a scan (a poll cycle of
the inventory resource, a CSV inventory report) delivers is stored, or once the scan is given up.

The readers register each row before handing it on and close the scan at the end (`state/stock_scans.py`);
the stock flow stores rows and computes only the SKUs no live scan holds (`flows.stock.ingest_inventory`).
Here: the release sweep of a closed or given-up scan (`bcsync.stock.release_scan`: the SKUs already complete
at the close, which no later row will release), and the bound (`bcsync.stock.expire_scans`, from beat): a scan
whose rows stopped arriving for `BCSYNC_STOCK_COMPLETE_SECONDS` is given up, its held SKUs are computed from
the rows stored and a `stock_incomplete` exception names each SKU and the warehouse rows that never arrived.
"""

from __future__ import annotations

import logging
import time

from config.mapping import get_mapping
from config.task_names import RELEASE_STOCK_SCAN
from delivery.publish import publish
from delivery.runtime import Runtime, runtime
from flows import stock
from state.stock_scans import ExpiredScan

log = logging.getLogger(__name__)

RELEASE_LANE = "fast"  # the lane of the inventory rows: a released figure is as urgent as the row that made it
RELEASE_STEP_SECONDS = 5.0  # one release task sweeps this long, then hands the rest on (task time limits)


def release_scan(scan: str, cursor: int = 0, rt: Runtime | None = None, lane: str = RELEASE_LANE) -> int:
    """Sweep a closed or given-up scan from `cursor`: compute every SKU it touched that nothing holds any more.
    Idempotent (a SKU computed twice gives the same newest figure); returns the SKUs computed."""
    rt = rt or runtime()
    scans = rt.stores.stock_scans
    if cursor == 0:
        report_expired(scan, rt)
    mapping = get_mapping()
    deadline = time.monotonic() + RELEASE_STEP_SECONDS
    computed = 0
    while True:
        cursor, skus = scans.release_step(scan, cursor)
        computed += stock.recompute_skus(skus, mapping, rt)
        if cursor == 0:
            scans.finish(scan)  # only now: a sweep lost before this is found again and run again
            return computed
        if time.monotonic() > deadline:
            publish(RELEASE_STOCK_SCAN, [scan, cursor], lane)
            return computed


def expire_scans(rt: Runtime | None = None, now: float | None = None) -> list[str]:
    """The bound: give up scans whose rows stopped arriving, and sweep again sweeps that were lost (a worker
    or a publisher gone between the close and the end of the sweep). Returns the scans handed to a sweep."""
    rt = rt or runtime()
    scans = rt.stores.stock_scans
    quiet = rt.settings.stock_complete_seconds
    todo = scans.expire(quiet, now)
    todo += [scan for scan in scans.stale_sweeps(quiet, now) if scan not in todo]
    for scan in todo:
        publish(RELEASE_STOCK_SCAN, [scan, 0], RELEASE_LANE)
    if todo:
        log.warning("stock scans given up or swept again: %s", ", ".join(todo))
    return todo


def report_expired(scan: str, rt: Runtime) -> int:
    """A given-up scan's exceptions (once): one per SKU whose rows never arrived, naming their warehouses, and
    one for the read itself when it never finished. Returns the SKUs reported."""
    scans = rt.stores.stock_scans
    gone = scans.expired_report(scan)
    if gone is None:
        return 0
    bound = rt.settings.stock_complete_seconds
    for sku, warehouses in sorted(gone.missing.items()):
        missing = sorted(set(warehouses))
        rt.exceptions.record(
            "stock_incomplete", f"sku:{sku}",
            f"rows of {sku} in {', '.join(missing)} from {_what(gone)} never arrived within {bound:g} s; "
            "its figure was sent from the rows stored (a later change of those rows corrects it)",
            details=_details(gone) | {"sku": sku, "missing_warehouses": missing},
        )
    if gone.closed is None:
        rt.exceptions.record(
            "stock_incomplete", f"scan:{gone.source}",
            f"{_what(gone)} stopped before its end and no later read of it finished within {bound:g} s: the "
            "SKUs it touched were sent from the rows stored (rows on pages never read are missing)",
            details=_details(gone),
        )
    scans.reported(scan)
    log.warning("stock scan %s given up: %d SKU(s) with rows that never arrived", scan, len(gone.missing))
    return len(gone.missing)


def _what(gone: ExpiredScan) -> str:
    kind, _, name = gone.source.partition(":")
    return f"the CSV report {name}" if kind == "csv" else f"the poll cycle of {name or gone.source}"


def _details(gone: ExpiredScan) -> dict[str, object]:
    return {"scan": gone.scan, "source": gone.source, "opened": gone.opened, "closed": gone.closed}
