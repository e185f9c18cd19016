"""The fleet collector on a real Redis: what the stores hold is what one scrape shows (reconciliation's differences
from the open exceptions of its types), and a Redis that does not answer is a scrape that says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from prometheus_client import generate_latest

from config.mapping import Mapping
from state.factory import Stores
from state.watermarks import WatermarkStore
from tests.support.ops import make_settings
from workers.metrics import registry

PREFIX = "metricstest"


@pytest.fixture
def st(redis_url: str) -> Iterator[Stores]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield Stores(make_settings(redis_url=redis_url, key_prefix=PREFIX), Mapping(), client)
    client.close()


def scrape(st: Stores) -> str:
    return generate_latest(registry(st)).decode()


def test_a_scrape_reads_the_fleets_stores(st: Stores) -> None:
    st.exceptions.record("recon_stock_mismatch", "variant:SKU1", "stock 3, Klaviyo 5")
    st.exceptions.record("recon_stock_mismatch", "variant:SKU2", "stock 1, Klaviyo 0")
    st.exceptions.record("invalid_record", "customer:C1", "no e-mail")
    st.lane_stats.outcome("fast", "subscribe", "delivered", 4)
    st.lane_stats.delivered("fast", 4, time.time() - 0.3)
    WatermarkStore(st.redis, PREFIX).set("customer", datetime.fromtimestamp(time.time() - 30, UTC))
    text = scrape(st)
    assert 'bcsync_reconcile_differences{type="recon_stock_mismatch"} 2.0' in text
    assert 'type="invalid_record"' not in text.split("# HELP bcsync_reconcile_differences")[1].split("# HELP")[0]
    assert 'bcsync_exceptions_open{owner="operations",type="invalid_record"} 1.0' in text
    assert 'bcsync_deliveries_total{kind="subscribe",lane="fast",outcome="delivered"} 4.0' in text
    assert 'bcsync_delivery_latency_seconds_bucket{lane="fast",le="0.5"} 1.0' in text
    assert 'bcsync_delivery_latency_seconds_bucket{lane="fast",le="0.25"} 0.0' in text
    assert 'bcsync_delivery_latency_seconds_count{lane="fast"} 1.0' in text
    assert 'bcsync_watermark_age_seconds{resource="customer"} 30' in text
    assert "bcsync_redis_up 1.0" in text


def test_a_dead_lettered_operation_is_counted_apart_from_its_attempts_outcome(st: Stores) -> None:
    """Klaviyo refused 3 operations of one attempt, which were dead-lettered: the attempts' outcomes add up to 3
    (not 6), and the dead-letter count says 3."""
    st.lane_stats.outcome("fast", "profile_upsert", "refused", 3)
    st.lane_stats.dead_lettered("fast", "profile_upsert", 3)
    text = scrape(st)
    attempts = [line for line in text.splitlines() if line.startswith("bcsync_deliveries_total{")]
    assert attempts == ['bcsync_deliveries_total{kind="profile_upsert",lane="fast",outcome="refused"} 3.0']
    assert 'bcsync_dead_lettered_total{kind="profile_upsert",lane="fast"} 3.0' in text


def test_a_redis_that_does_not_answer_is_a_scrape_that_says_so() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)  # nothing listens on port 1
    st = Stores(make_settings(redis_url="redis://127.0.0.1:1/0", key_prefix=PREFIX), Mapping(), client)
    text = scrape(st)
    assert "bcsync_redis_up 0.0" in text and "bcsync_deliveries" not in text
