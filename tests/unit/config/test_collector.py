"""Every bcsync command sets Python's garbage collector for a long-running process (config/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from config.collector import freeze_what_exists, tune_collector
from config.settings import get_settings
from workers import cli


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_young_collections_come_at_the_threshold_and_zero_keeps_pythons(restored_collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    tune_collector(0)
    assert gc.get_threshold() == (700, 10, 10)
    tune_collector(25_000)
    assert gc.get_threshold() == (25_000, 10, 10)


def test_what_exists_is_frozen_and_new_cycles_are_still_collected(restored_collector: None) -> None:
    gc.unfreeze()
    freeze_what_exists()
    assert gc.get_freeze_count() > 1000  # the modules, classes and validators imported so far

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2  # a garbage cycle made after the freeze


def test_every_command_starts_with_the_collector_set(restored_collector: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCSYNC_GC_YOUNG_THRESHOLD", "12345")
    get_settings.cache_clear()
    try:
        gc.unfreeze()
        cli._set_up_the_process()  # typer runs it before any command
        assert gc.get_threshold()[0] == 12345
        assert gc.get_freeze_count() > 1000
    finally:
        get_settings.cache_clear()


def test_a_parallel_backfills_spawned_processes_set_the_collector_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bcsync backfill --workers N` spawns its processes: they run no command's set-up of their own."""
    from workers.backfill_parallel import process_pool  # noqa: PLC0415

    monkeypatch.setenv("BCSYNC_GC_YOUNG_THRESHOLD", "23456")  # a spawned process reads its settings anew
    with process_pool(1) as pool:
        threshold = pool.apply(gc.get_threshold)
        frozen = pool.apply(gc.get_freeze_count)
    assert threshold[0] == 23456
    assert frozen > 1000
