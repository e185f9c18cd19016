"""The stock flush killed between claim and publish loses nothing, for the pending stock figures and for
the catalog outbox: a real flush process, SIGKILLed in its publish, on real Redis; after the claims are
taken back a normal flush publishes every figure and every row once."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from dataclasses import asdict

import redis

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from state.claims import ClaimStore
from state.keys import RedisKeys
from sync.catalog.transform import item_key
from sync.operations import Operation
from sync.stock.coalesce import PendingFigure
from sync.stock.urgency import inventory_key
from tests.integration.stock.conftest import variant_id
from tests.support.crash_flush import queued_operations, run
from tests.support.fleet import fleet_env, wait_for

VERSION = "2026-11-20T10:00:00~2026-11-20T15:00:00.000000Z"


def figures(count: int) -> list[PendingFigure]:
    quiet = time.time() - 3600  # quiet for an hour: every figure is due
    return [PendingFigure(f"V{n:04d}", n, VERSION, quiet, quiet) for n in range(count)]


def catalog_rows(count: int) -> list[Operation]:
    return [Operation(kind="catalog_item_upsert", key=f"catalog-item:I{n:04d}", lane="batch", version=VERSION,
                      payload={"external_id": f"I{n:04d}", "title": f"item {n}"}) for n in range(count)]


def crash_then_flush(redis_url: str, seed: dict[str, str], buffer: str) -> tuple[Counter[str], redis.Redis, RedisKeys]:
    """Seed a stock hash buffer, kill a flush between claim and publish, then flush normally."""
    # a tail shorter than a whole job ships at once: this test is about claims, not the age bound
    env = {**fleet_env(redis_url, "http://127.0.0.1:9"), "BCSYNC_BULK_MAX_WAIT_SECONDS": "0"}
    keys = RedisKeys(env["BCSYNC_KEY_PREFIX"])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.hset(f"{keys.stock}{buffer}", mapping=seed)  # type: ignore[arg-type]

    crashed = run("stock", "crash", env)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert client.hlen(f"{keys.stock}{buffer}") == 0, "the flush had taken everything"
    assert client.llen(keys.queue("batch")) == 0, "and published nothing"

    flushed = run("stock", "normal", env, reclaim_after=0)  # a later flush, once the claims are stale
    assert flushed.returncode == 0, flushed.stderr
    assert client.hlen(f"{keys.stock}{buffer}") == 0 and client.zcard(keys.claims) == 0
    return queued_operations(client, keys.queue("batch")), client, keys


def test_a_stock_flush_killed_between_claim_and_publish_loses_no_pending_figure(redis_url):
    pending = figures(250)
    seed = {f.external_id: json.dumps(asdict(f)) for f in pending}
    queued, client, _ = crash_then_flush(redis_url, seed, "pending")
    assert queued == Counter(inventory_key(f.external_id) for f in pending)
    client.close()


def test_a_stock_flush_killed_between_claim_and_publish_loses_no_catalog_row(redis_url):
    rows = catalog_rows(150)
    queued, client, _ = crash_then_flush(redis_url, {op.key: op.model_dump_json() for op in rows}, "outbox")
    assert queued == Counter(op.key for op in rows)
    client.close()


def test_after_a_killed_flush_every_figure_and_catalog_row_reaches_klaviyo(stock_fleet):
    fleet = stock_fleet(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.1))
    ids = [f"CRASH-{n:03d}" for n in range(120)]
    fleet.seed_variants("CRASH-ITEM", ids, quantity=0)
    quiet = time.time() - 3600
    fleet.state.put_pending_many(PendingFigure(e, 7, VERSION, quiet, quiet) for e in ids)
    fleet.state.queue_catalog([Operation(
        kind="catalog_item_upsert", key=item_key("CRASH-ITEM"), lane="batch", version=VERSION,
        payload={"external_id": "CRASH-ITEM", "title": "renamed", "description": "renamed",
                 "url": "https://shop.example.com", "price": 1.0, "published": True},
    )])
    # the catalog row ships at once (a tail shorter than a whole job otherwise waits its age bound)
    crashed = run("stock", "crash", {**fleet.env, "BCSYNC_BULK_MAX_WAIT_SECONDS": "0"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert not fleet.state.pending() and fleet.state.outbox_size() == 0

    fleet.worker("batch", concurrency=2)
    assert ClaimStore(fleet.redis, fleet.prefix).reclaim_stale(older_than=0) == 121  # as the drainer does
    fleet.publish("bcsync.flush_stock", [], "batch")
    item = fleet.sandbox.catalog.items[variant_id("CRASH-ITEM")]
    wait_for(lambda: all(fleet.quantity(e) == 7 for e in ids) and item.attributes["title"] == "renamed", 30,
             message="every figure and the renamed item in Klaviyo")
