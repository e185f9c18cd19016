"""The poller's cycles per resource for `bcsync status` (state/poller_health.py), on a real private Redis."""

from __future__ import annotations

from state.poller_health import PollerHealth


def test_read_errors_are_kept_with_when_they_began_and_a_good_cycle_clears_them(redis_client) -> None:
    health = PollerHealth(redis_client, "t")
    assert health.all() == {}
    health.cycle("order", held=True, error="Resource 'order' not found (404)", error_kind="not_found", now=100.0)
    failing = health.cycle("order", held=True, error="Resource 'order' not found (404)", error_kind="not_found",
                           now=110.0)
    assert failing.failing_since == 100.0 and failing.failures == 2 and failing.held == 2
    assert failing.error_kind == "not_found" and failing.at == 110.0
    back = health.cycle("order", held=False, records=12, invalid=3, now=120.0)
    assert back.error is None and back.failing_since is None and back.failures == 0 and back.held == 0
    assert (back.records, back.invalid) == (12, 3)
    assert set(health.all()) == {"order"} and redis_client.hexists("t:poller:health", "order")


def test_held_back_cycles_count_in_a_row(redis_client) -> None:
    health = PollerHealth(redis_client, "t")
    for _ in range(3):
        held = health.cycle("customer", held=True, records=200)
    assert held.held == 3 and held.error is None
    assert health.cycle("customer", held=False).held == 0
