"""The stock flush sends whole 100-row catalog jobs: due stock figures and held catalog rows leave in chunks of
100 per kind, the tail waits for more or for BCSYNC_BULK_MAX_WAIT_SECONDS past its due time. A real flush
process (`bcsync.flush_stock`'s function) on real Redis; what it published is read from the batch lane."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import asdict

import redis

from state.keys import RedisKeys
from state.stock import StockState
from sync.operations import Operation
from sync.stock.coalesce import PendingFigure
from sync.stock.urgency import inventory_key
from tests.support.crash_flush import run
from tests.support.fleet import fleet_env

VERSION = "2026-11-20T10:00:00~2026-11-20T15:00:00.000000Z"
DEBOUNCE = 30.0  # the mapping's default stock.debounce_seconds


def jobs(client: redis.Redis, queue: str) -> list[tuple[str, int]]:
    """(kind, operations) of every delivery message on a lane, in order."""
    out = []
    for raw in client.lrange(queue, 0, -1):
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        out.append((args[0]["kind"], len(args[0]["operations"])))
    return out


def test_due_figures_and_catalog_rows_leave_in_whole_jobs_and_the_tails_once_past_the_bound(redis_url):
    env = fleet_env(redis_url, "http://127.0.0.1:9", BCSYNC_BULK_MAX_WAIT_SECONDS="3600")
    keys = RedisKeys(env["BCSYNC_KEY_PREFIX"])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    state = StockState(client, env["BCSYNC_KEY_PREFIX"])
    due_since = time.time() - DEBOUNCE - 1  # quiet for just over a debounce: due a second ago
    figures = [PendingFigure(f"V{n:04d}", n, VERSION, due_since, due_since) for n in range(250)]
    client.hset(state.pending_key, mapping={f.external_id: json.dumps(asdict(f)) for f in figures})
    items = [Operation(kind="catalog_item_upsert", key=f"catalog-item:I{n:03d}", lane="batch", version=VERSION,
                       payload={"external_id": f"I{n:03d}", "title": f"item {n}"}) for n in range(130)]
    variants = [Operation(kind="catalog_variant_upsert", key=f"catalog-variant:V{n:03d}", lane="batch",
                          version=VERSION, payload={"external_id": f"V{n:03d}", "title": f"v {n}"})
                for n in range(40)]
    state.queue_catalog([*items, *variants])

    assert run("stock", "normal", env).returncode == 0
    batch = keys.queue("batch")
    assert Counter(jobs(client, batch)) == Counter({("variant_inventory", 100): 2, ("catalog_item_upsert", 100): 1})
    assert client.hlen(state.pending_key) == 50 and client.hlen(state.outbox_key) == 70, "the tails wait"

    past_bound = {**env, "BCSYNC_BULK_MAX_WAIT_SECONDS": "0"}
    assert run("stock", "normal", past_bound).returncode == 0
    assert Counter(jobs(client, batch)) == Counter({("variant_inventory", 100): 2, ("catalog_item_upsert", 100): 1,
                                                    ("variant_inventory", 50): 1, ("catalog_item_upsert", 30): 1,
                                                    ("catalog_variant_upsert", 40): 1})
    assert client.hlen(state.pending_key) == 0 and client.hlen(state.outbox_key) == 0
    sent: Counter[str] = Counter()
    for raw in client.lrange(batch, 0, -1):
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
        sent.update(op["key"] for op in args[0]["operations"])
    assert sent == Counter([*(inventory_key(f.external_id) for f in figures), *(op.key for op in [*items, *variants])])
    client.close()
