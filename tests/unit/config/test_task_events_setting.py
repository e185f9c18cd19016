"""Celery task events (Flower's task view) are on unless BCSYNC_TASK_EVENTS turns them off (issue 18)."""

from __future__ import annotations

import pytest

from config.celery import make_app
from config.settings import Settings


def test_task_events_are_on_by_default() -> None:
    conf = make_app(Settings()).conf
    assert conf.worker_send_task_events is True and conf.task_send_sent_event is True


def test_bcsync_task_events_false_turns_them_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCSYNC_TASK_EVENTS", "false")
    conf = make_app(Settings()).conf
    assert conf.worker_send_task_events is False and conf.task_send_sent_event is False
