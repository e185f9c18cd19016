"""`bcsync csv-drops`: Blue Cherry CSV report drops into the same stock and catalog flow as REST.

Every file in `settings.csv_drop_dir` is processed once, across restarts (`RedisDropTracker`, keyed by
name, size and content hash): its records are published as `bcsync.stock_records` tasks on the batch lane
(style masters before inventory reports of the same scan, oldest first), and the file is marked only after
the broker has them. A crash in between re-publishes the file, which is harmless: rows are stored
newest-wins and figures are versioned. A file that is not a known report, or rows that cannot be read,
become operator exceptions; the file is marked so it is not retried forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

import config.celery
from config.mapping import get_mapping
from config.settings import get_settings
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

log = logging.getLogger(__name__)

CHUNK = 500  # records per task
Publish = Callable[[str, list[Any]], None]


def process_drops(folder: Path, tracker: DropTracker, publish: Publish, record_problem: Callable[..., Any]) -> int:
    """Publish every pending drop's records; returns the number of files handled."""
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
        for start in range(0, len(result.records), CHUNK):
            publish(RECORDS, [resource, result.records[start : start + CHUNK], observed])
        for problem in result.problems:
            record_problem("invalid_record", f"csv:{problem.file}:{problem.line}", problem.reason)
        tracker.mark(result.file_id)  # only now: every record is with the broker
        log.info("csv drop %s: %s %s records, %s problems", path.name, len(result.records), resource,
                 len(result.problems))
    return len(files)


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
            process_drops(settings.csv_drop_dir, tracker, publish, rt.exceptions.record)
        except Exception:  # a Redis or broker blip: the next scan retries (files are not marked)
            log.exception("csv drop scan failed")
            if once:
                raise
        if once:
            return
        time.sleep(interval)
