"""Beat's reconciliation (config/celery.py `reconcile_schedule`): one run of `flows.reconcile.scheduled`."""

from __future__ import annotations

import logging
from collections import Counter

from config.celery import app
from config.task_names import RECONCILE
from flows.reconcile import scheduled
from sync.reconcile.differences import AREAS, Area

log = logging.getLogger(__name__)


@app.task(name=RECONCILE, ignore_result=True, acks_late=True)
def reconcile(areas: list[str], recent: bool, nightly: bool) -> None:
    """Compare the areas; differences become exceptions, the auto-repaired areas' are re-delivered."""
    chosen: list[Area] = [a for a in AREAS if a in areas]
    summary = scheduled(chosen, recent, nightly)
    found = Counter(d.type for d in summary.differences)
    log.info("reconciled %s: %s; %d difference(s) %s, %d repaired", ",".join(chosen), dict(summary.compared),
             len(summary.differences), dict(found), len(summary.repaired))
