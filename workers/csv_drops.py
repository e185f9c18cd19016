"""`bcsync csv-drops`: Blue Cherry CSV report drops into the same stock and catalog flow as REST.

Every file in `settings.csv_drop_dir` is processed once, across restarts (`RedisDropTracker`, keyed by
name, size and content hash): its records are published as `bcsync.stock_records` tasks on the batch lane
(style masters before inventory reports of the same scan, oldest first), and the file is marked only after
the broker has them. A crash in between re-publishes the file, which is harmless: rows are stored
newest-wins and figures are versioned. A file that is not a known report, or rows that cannot be read,
become operator exceptions; the file is marked so it is not retried forever.

An inventory report is one stock scan (state/stock_scans.py): its rows are registered before each chunk is
published (entry = the row's index in the report), and the scan is closed once every chunk is with the
broker, so no SKU's figure is computed from part of its warehouses while other chunks are still queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

import config.celery
from config.mapping import Mapping, get_mapping
from config.settings import get_settings
from config.task_names import RELEASE_STOCK_SCAN
from config.task_names import STOCK_RECORDS as RECORDS
from connectors.bluecherry.csv_drops import (
    CsvDropError,
    DropTracker,
    RedisDropTracker,
    file_id,
    pending_drops,
    read_drop,
    report_kind,
)
from delivery.runtime import runtime
from state.keys import RedisKeys
from state.stock_scans import ExpectedRow, StockScans
from sync.catalog.records import RecordError
from sync.stock.ats import parse_inventory_row

log = logging.getLogger(__name__)

CHUNK = 500  # records per task
Publish = Callable[[str, list[Any]], None]


def process_drops(folder: Path, tracker: DropTracker, publish: Publish, record_problem: Callable[..., Any],
                  scans: StockScans | None = None) -> int:
    """Publish every pending drop's records; returns the number of files handled. With `scans`, each
    inventory report is a stock scan (its chunks carry the scan and their first row's index)."""
    mapping = get_mapping()
    files = pending_drops(folder, tracker)
    files.sort(key=lambda path: _kind_rank(path))  # styles first: variants exist before their stock
    for path in files:
        try:
            result = read_drop(path, mapping)
        except (CsvDropError, OSError) as exc:
            record_problem("invalid_record", f"csv:{path.name}", str(exc))
            tracker.mark(_file_id(path))
            continue
        resource = "inventory" if result.kind == "inventory" else "style"
        observed = result.observed_at.isoformat()
        scan = scans.new_id() if scans is not None and resource == "inventory" else ""
        source = f"csv:{result.file_id}"
        for start in range(0, len(result.records), CHUNK):
            chunk = result.records[start : start + CHUNK]
            if scans is not None and scan:
                scans.expect(scan, source, expected_rows(chunk, start, mapping))
                publish(RECORDS, [resource, chunk, observed, scan, start])
            else:
                publish(RECORDS, [resource, chunk, observed])
        if scans is not None and scan:
            for closed in scans.close_source(source):  # every chunk is with the broker
                publish(RELEASE_STOCK_SCAN, [closed])
        for problem in result.problems:
            record_problem("invalid_record", f"csv:{problem.file}:{problem.line}", problem.reason)
        tracker.mark(result.file_id)  # only now: every record is with the broker
        log.info("csv drop %s: %s %s records, %s problems", path.name, len(result.records), resource,
                 len(result.problems))
    return len(files)


def expected_rows(records: list[dict[str, Any]], first: int, mapping: Mapping) -> list[ExpectedRow]:
    """The report's rows a worker will store, each under its index in the report (`first` + position)."""
    fields, last_mod = mapping.fields.inventory, mapping.resources.inventory.last_mod
    rows: list[ExpectedRow] = []
    for index, raw in enumerate(records, start=first):
        try:
            row = parse_inventory_row(raw, fields, last_mod, mapping.date_formats("inventory"))
        except RecordError:
            continue  # the worker records it as invalid: nothing of it to wait for
        rows.append(ExpectedRow(str(index), row.sku.text, row.warehouse))
    return rows


def _kind_rank(path: Path) -> int:
    try:
        return 0 if report_kind(path) == "style" else 1
    except (CsvDropError, OSError):
        return 2


def _file_id(path: Path) -> str:
    try:
        return file_id(path)
    except OSError:
        return f"{path.name}:unreadable"


def csv_drops(
    once: Annotated[bool, typer.Option("--once", help="one scan, then exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds between scans")] = 30.0,
) -> None:
    """Process CSV report drops from BCSYNC_CSV_DROP_DIR into the stock and catalog flow."""
    settings = get_settings()
    if settings.csv_drop_dir is None:
        raise typer.BadParameter("set BCSYNC_CSV_DROP_DIR (the folder Blue Cherry drops its reports into)")
    rt = runtime()
    tracker = RedisDropTracker(rt.redis, RedisKeys(settings.key_prefix).csv_drops, settings.ledger_ttl_days)

    def publish(task: str, args: list[Any]) -> None:
        config.celery.app.send_task(task, args=args, queue="batch")

    while True:
        try:
            process_drops(settings.csv_drop_dir, tracker, publish, rt.exceptions.record, rt.stores.stock_scans)
        except Exception:  # a Redis or broker blip: the next scan retries (files are not marked)
            log.exception("csv drop scan failed")
            if once:
                raise
        if once:
            return
        time.sleep(interval)
