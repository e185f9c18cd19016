"""The freshness check on a real Redis: a value over its threshold raises one exception (not one per check),
clears after `freshness_clear_after_seconds` under it and resolves the exception; each reading's source."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from config.mapping import Mapping
from delivery import freshness
from state.factory import Stores
from state.freshness import FreshnessCrossings
from state.poller_health import PollerHealth
from state.queue_ages import message_time
from state.throttles import ThrottleCounts
from state.watermarks import WatermarkStore
from tests.support.ops import make_settings

PREFIX = "fresh"


@pytest.fixture
def st(redis_url: str) -> Iterator[Stores]:
    settings = make_settings(redis_url=redis_url, key_prefix=PREFIX, watermark_max_age_seconds=60,
                             freshness_clear_after_seconds=30, poller_read_max_delay_seconds=5)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield Stores(settings, Mapping(), client)
    client.close()


def of(readings: list[freshness.Reading], check: str, subject: str) -> freshness.Reading:
    return next(r for r in readings if r.check == check and r.subject == subject)


def test_a_crossing_is_raised_once_and_resolved_once_it_stayed_under(st: Stores) -> None:
    now = time.time()
    marks = WatermarkStore(st.redis, PREFIX)
    marks.set("customer", datetime.fromtimestamp(now - 120, UTC))
    first = freshness.check(st, now)
    assert [(t.reading.check, t.reading.subject, t.raised) for t in first] == [("watermark_age", "customer", True)]
    record = st.exceptions.get("watermark_stale", "customer")
    assert record is not None and record.status == "open" and record.owner == "operations"
    assert "watermark age of customer 120 s (threshold 60 s)" in record.reason
    assert freshness.check(st, now + 15) == []  # still over: no second report
    assert st.exceptions.get("watermark_stale", "customer").count == 2  # type: ignore[union-attr]

    marks.set("customer", datetime.fromtimestamp(now + 19, UTC))
    assert freshness.check(st, now + 20) == []  # under, but not for freshness_clear_after_seconds yet
    assert st.exceptions.get("watermark_stale", "customer").status == "open"  # type: ignore[union-attr]
    cleared = freshness.check(st, now + 50)
    assert [(t.reading.subject, t.raised) for t in cleared] == [("customer", False)]
    assert st.exceptions.get("watermark_stale", "customer").status == "resolved"  # type: ignore[union-attr]
    assert FreshnessCrossings(st.redis, PREFIX).all() == {}


def test_back_over_before_the_clear_keeps_the_one_crossing(st: Stores) -> None:
    crossings = FreshnessCrossings(st.redis, PREFIX)
    assert crossings.over("queue_age", "fast", 70, 60, now=100.0)
    assert not crossings.under("queue_age", "fast", now=110.0, clear_after=30)
    assert not crossings.over("queue_age", "fast", 80, 60, now=120.0)  # the same crossing, not a new one
    assert not crossings.under("queue_age", "fast", now=130.0, clear_after=30)
    assert not crossings.under("queue_age", "fast", now=150.0, clear_after=30)  # under since 130 only
    assert crossings.under("queue_age", "fast", now=160.0, clear_after=30)
    assert not crossings.under("queue_age", "fast", now=170.0, clear_after=30)  # cleared once


def test_the_readings(st: Stores) -> None:
    now = time.time()
    PollerHealth(st.redis, PREFIX).cycle("customer", held=False, now=now - 30)
    PollerHealth(st.redis, PREFIX).cycle("customer", held=True, error="boom", error_kind="bug", now=now - 10)
    ThrottleCounts(st.redis, PREFIX).record("profile-import", now=now)
    ThrottleCounts(st.redis, PREFIX).record("profile-import", now=now - 3600)  # outside the window
    st.redis.lpush(st.keys.queue("batch"), json.dumps({"headers": {"bcsync_sent": now - 40}, "body": ""}))
    st.delayed.add("t", [], "default", due=now - 7)
    got = freshness.readings(st, now)
    read = of(got, "read_age", "customer")
    assert read.value == pytest.approx(30, abs=0.01)  # the failed cycle is no successful read
    assert read.threshold == 5 + 10  # the resource's poll interval (10 s) plus the setting
    assert read.over
    assert of(got, "throttles", "profile-import").value == 1
    assert of(got, "queue_age", "batch").value == pytest.approx(40, abs=0.01)
    assert of(got, "queue_age", "fast").value == 0.0
    assert of(got, "delayed_overdue", "default").value == pytest.approx(7, abs=0.01)
    assert of(got, "watermark_age", "customer").value is None  # never polled: nothing to say


def test_a_message_without_the_header_is_aged_by_its_envelope() -> None:
    import base64  # noqa: PLC0415

    body = base64.b64encode(json.dumps([[{"id": "e", "created": 123.5}], {}, {}]).encode()).decode()
    assert message_time(json.dumps({"headers": {}, "body": body, "properties": {"body_encoding": "base64"}})) == 123.5
    assert message_time(json.dumps({"headers": {}, "body": "x", "properties": {}})) is None
    assert message_time("not json") is None


def test_an_old_watermark_of_a_resource_read_cleanly_is_quiet_not_late(st: Stores) -> None:
    now = time.time()
    WatermarkStore(st.redis, PREFIX).set("customer", datetime.fromtimestamp(now - 3600, UTC))
    cycles = PollerHealth(st.redis, PREFIX)
    cycles.cycle("customer", held=False, now=now - 2)  # read 2 s ago, nothing newer: Blue Cherry is quiet
    quiet = of(freshness.readings(st, now), "watermark_age", "customer")
    assert quiet.value == pytest.approx(3600, abs=0.01) and quiet.quiet and not quiet.over
    assert freshness.check(st, now) == []
    cycles.cycle("customer", held=True, now=now - 1)  # the window keeps moving: the watermark is held back
    assert of(freshness.readings(st, now), "watermark_age", "customer").over
    cycles.cycle("customer", held=False, now=now - 60)  # read cleanly, but too long ago (bound 5 + 10 s)
    assert of(freshness.readings(st, now), "watermark_age", "customer").over
