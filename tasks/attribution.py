"""Beat's daily attribution report (config/celery.py `attribution_schedule`): one run of `flows.attribution` over
the last BCSYNC_ATTRIBUTION_SCHEDULE_DAYS, so the values reports' cache stays warm (a person's report then reads
almost nothing of their 225 a day) and the report's exceptions are raised without anyone asking."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from config.celery import app
from config.settings import get_settings
from config.task_names import ATTRIBUTION_REPORT
from flows.attribution import AttributionSetupError, build_attribution_run

log = logging.getLogger(__name__)


@app.task(name=ATTRIBUTION_REPORT, ignore_result=True, acks_late=True)
def attribution_report() -> None:
    since = datetime.now(UTC) - timedelta(days=get_settings().attribution_schedule_days)
    try:
        result = build_attribution_run().run(since)
    except AttributionSetupError as exc:  # a setting names no metric: say so once a day, never retry in a loop
        log.error("attribution report not run: %s", exc)
        return
    log.info("attribution report: %d campaigns/flows, %d ERP orders, %d missing in Klaviyo, values chunks read %d "
             "(cached %d, stale %d), exceptions %s", len(result.report.sends), result.report.orders,
             len(result.report.missing), result.chunks_read, result.chunks_cached, len(result.chunks_stale),
             dict(result.exceptions))
