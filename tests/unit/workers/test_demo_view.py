"""The demo's live view fits a default 80-column terminal and shows no `None`: a lane that delivered nothing yet
has no latency (`-`), a long Flower address folds inside its cell instead of wrapping the title."""

from __future__ import annotations

import re
import socket
import time

import redis
from rich.console import Console

from state.lane_stats import LaneStats
from workers.demo import _render, _snapshot

FLOWER = "http://127.0.0.1:55555 (user demo, password in the log above: a-very-long-generated-one)"


def _lines(snap: dict[str, object]) -> list[str]:
    console = Console(width=80, record=True, force_terminal=False, color_system=None)
    console.print(_render(snap, time.monotonic() - 42, FLOWER))
    return console.export_text().splitlines()


def _check(lines: list[str]) -> None:
    assert not [line for line in lines if len(line) > 80], lines
    assert not [line for line in lines if "None" in line], lines


def test_a_fresh_demo_with_no_deliveries_yet() -> None:
    snap = {"profiles": 0, "email subscribed": 0, "sms subscribed": 0, "events": {}, "duplicates suppressed": 0,
            "catalog variants": 0, "queues": {"fast": 0, "default": 0, "batch": 0},
            "lanes": {lane: {"delivered": 0, "p50_seconds": None, "p95_seconds": None}
                      for lane in ("fast", "default", "batch")},
            "dead letters": {"fast": 0, "default": 0, "batch": 0}, "open exceptions": 0}
    lines = _lines(snap)
    _check(lines)
    assert any("fast lane" in line and "latency p50 -, p95 -" in line for line in lines), lines
    assert lines[0].startswith("bcsync demo - 42 s - Ctrl-C stops")


def test_the_view_of_real_state(redis_client: redis.Redis) -> None:
    """The snapshot the demo takes of Redis (the Klaviyo sandbox down: nothing read from it), one lane with
    deliveries, two without, and a missing field."""
    prefix = "demoview"
    LaneStats(redis_client, prefix).delivered("fast", 3, time.time() - 0.25)
    redis_client.delete(f"{prefix}:exceptions")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nothing_there = f"http://127.0.0.1:{s.getsockname()[1]}"
    snap = _snapshot(nothing_there, redis_client, prefix)
    snap.pop("catalog variants")
    snap["events"] = {"Placed Order": 1_234, "Ordered Product": 98_765, "Fulfilled Order": 12}
    lines = _lines(snap)
    _check(lines)
    fast = next(line for line in lines if "fast lane" in line)
    assert "3 delivered" in fast and " s, p95 " in fast and "latency p50 -" not in fast
    assert any("default lane" in line and "latency p50 -, p95 -" in line for line in lines)
    assert any("catalog variants" in line and line.rstrip().endswith("-") for line in lines)
    assert any("98765" in line for line in lines)
    assert any(re.search(r"fast lane\s*│\s*3 delivered", line) for line in lines)  # as test_demo reads it
