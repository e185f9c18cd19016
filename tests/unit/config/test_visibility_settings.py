"""The visibility timeout must leave room for a few late heartbeats, or live workers' messages come back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.celery import make_app
from config.settings import Settings


def test_a_visibility_timeout_under_three_heartbeats_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 3 x unacked_heartbeat_seconds"):
        Settings(visibility_timeout_seconds=5, unacked_heartbeat_seconds=2.0)
    assert Settings(visibility_timeout_seconds=6, unacked_heartbeat_seconds=2.0).visibility_timeout_seconds == 6


def test_the_broker_sweeps_with_the_settings_and_the_hard_limit_may_exceed_the_timeout() -> None:
    settings = Settings(visibility_timeout_seconds=20, redelivery_check_seconds=5, task_time_limit_seconds=180)
    options = make_app(settings).conf.broker_transport_options
    assert options["visibility_timeout"] == 20 and options["unacked_restore_interval"] == 5
    # a worker that died holding the sweep's lock delays the next sweep by one check at most
    assert options["unacked_mutex_expire"] == 5 and options["unacked_restore_throttle"] == 1
