"""Celery entry points of the stock and catalog flow (`flows/stock.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from config.celery import app
from config.task_names import FLUSH_STOCK, RECOMPUTE_STOCK_SWEEP, STOCK_RECORDS
from delivery.runtime import runtime
from flows import stock
from state.stock_scans import ScanRows


@app.task(name=STOCK_RECORDS, ignore_result=True, acks_late=True)
def stock_records(resource: str, records: list[dict[str, Any]], observed_at: str, scan: str = "",
                  first: int = 0) -> None:
    """Records of one resource from a CSV report drop (or any bulk reader), true as of `observed_at` (the
    report's as-of time, ISO with its offset): their versions are built from it, never from this worker's clock.
    `scan`: the report's stock scan, whose entries are the records' indexes in the report from `first` on."""
    rows = ScanRows(scan, [str(first + i) for i in range(len(records))]) if scan else None
    stock.ingest_report(resource, records, datetime.fromisoformat(observed_at), scan=rows)


@app.task(name=FLUSH_STOCK, ignore_result=True, retry_through_schedule=False)
def flush_stock() -> None:
    stock.flush(runtime())


@app.task(name=RECOMPUTE_STOCK_SWEEP, ignore_result=True, acks_late=True)
def recompute_sweep(digest: str, cursor: int = 0) -> None:
    """Go on re-computing every SKU's figure with the locations of `digest`, from `cursor` (a location change)."""
    stock.recompute_sweep(digest, cursor)
