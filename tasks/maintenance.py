"""Scheduled housekeeping tasks (beat)."""

from __future__ import annotations

import logging

from config.celery import app

log = logging.getLogger(__name__)


@app.task(name="bcsync.daily_profile_batch", ignore_result=True, acks_late=True)
def daily_profile_batch() -> None:
    """Send the non-immediate profile fields collected since the last run (the daily batch)."""
    try:
        from tasks.customers import run_daily_batch
    except ImportError:  # the customers flow is not installed in this build
        log.info("daily profile batch: nothing to do")
        return
    run_daily_batch()
