"""Reconciliation's schedule (beat entries from the settings), its read budget rule and the nightly slices."""

from __future__ import annotations

from celery.schedules import crontab

from config.celery import reconcile_schedule
from config.settings import Settings
from connectors.klaviyo.read_budget import admits
from flows.reconcile import Reconciler


def test_defaults_consent_and_stock_hourly_everything_nightly() -> None:
    entries = reconcile_schedule(Settings())
    recent, nightly = entries["reconcile-recent"], entries["reconcile-nightly"]
    assert recent["schedule"] == 3600 and recent["args"] == [["consent", "stock"], True, False]
    assert isinstance(nightly["schedule"], crontab) and nightly["schedule"].hour == {3}
    assert nightly["args"][0] == ["customers", "consent", "orders", "stock", "catalog"] and nightly["args"][2]
    assert reconcile_schedule(Settings(reconcile_recent_seconds=0, reconcile_nightly_hour=-1)) == {}


def test_the_read_budget_takes_only_its_share_of_what_the_other_lanes_leave() -> None:
    # cap 100, others used 60: 40 left, half of it is reconciliation's
    assert admits(0.5, 100, used=60 + 19, mine=19)
    assert not admits(0.5, 100, used=60 + 20, mine=20)
    assert not admits(0.5, 100, used=100, mine=0)  # nothing left: the guard and live delivery first
    assert admits(1.0, 10, used=9, mine=0)


def test_the_nightly_slices_cover_every_customer_exactly_once() -> None:
    codes = [f"C{i}" for i in range(500)]
    seen: list[str] = []
    for i in range(7):
        r = Reconciler.__new__(Reconciler)
        r.part = (i, 7)
        seen += [c for c in codes if r._in_part(c)]
    assert sorted(seen) == sorted(codes)
