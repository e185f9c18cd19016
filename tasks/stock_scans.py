"""Celery entry points of complete stock figures (`flows/stock_complete.py`): the release sweep of a closed stock
scan, and the beat-driven bound of scans whose rows stopped arriving."""

from __future__ import annotations

from config.celery import app
from config.task_names import EXPIRE_STOCK_SCANS, RELEASE_STOCK_SCAN
from flows import stock_complete


@app.task(name=RELEASE_STOCK_SCAN, ignore_result=True, acks_late=True)
def release_scan(scan: str, cursor: int = 0) -> None:
    """Compute the SKUs of a closed (or given-up) scan that nothing holds any more, from `cursor` on."""
    stock_complete.release_scan(scan, cursor)


@app.task(name=EXPIRE_STOCK_SCANS, ignore_result=True, retry_through_schedule=False)
def expire_scans() -> None:
    """Beat: give up scans whose rows stopped arriving (`BCSYNC_STOCK_COMPLETE_SECONDS`); sweep lost sweeps."""
    stock_complete.expire_scans()
