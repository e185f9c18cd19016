"""The attribution report's daily beat entry, from the settings."""

from __future__ import annotations

from celery.schedules import crontab

from config.celery import attribution_schedule, make_app
from config.settings import Settings
from config.task_names import ATTRIBUTION_REPORT


def test_daily_at_the_set_hour_on_the_batch_lane_or_never() -> None:
    (entry,) = attribution_schedule(Settings()).values()
    assert entry["task"] == ATTRIBUTION_REPORT and entry["options"] == {"queue": "batch"}
    assert isinstance(entry["schedule"], crontab) and entry["schedule"].hour == {4}
    assert attribution_schedule(Settings(attribution_schedule_hour=-1)) == {}
    assert "attribution-daily" in make_app(Settings()).conf.beat_schedule
