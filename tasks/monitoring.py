"""Celery entry point of the freshness check (`delivery/freshness.py`), run by beat on the fast lane."""

from __future__ import annotations

from config.celery import app
from config.task_names import CHECK_FRESHNESS
from delivery import freshness
from state.factory import stores


@app.task(name=CHECK_FRESHNESS, ignore_result=True, retry_through_schedule=False)
def check_freshness() -> None:
    """Beat: ages, 429s and budget use against their thresholds; a crossing raises one exception and one Sentry
    message, its clearing resolves the exception. A check missed (no worker) is simply the next one."""
    freshness.check(stores())
