"""Claims of buffered work (state/claims.py) on a real private Redis: claim, publish, delete; put-backs."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import pytest
import redis

from config.mapping import Mapping
from config.settings import Settings
from state.buffers import buffer_ages, reclaim_stale_claims
from state.claims import ClaimStore
from state.factory import Stores
from state.stock import StockState
from sync.operations import Operation
from sync.stock.coalesce import PendingFigure

V1 = "2026-11-20T10:00:00~2026-11-20T15:00:00.000000Z"
V2 = "2026-11-20T10:05:00~2026-11-20T15:05:00.000000Z"
V3 = "2026-11-20T10:09:00~2026-11-20T15:09:00.000000Z"


def row(key: str, version: str, title: str = "t") -> Operation:
    return Operation(kind="catalog_item_upsert", key=key, lane="batch", payload={"title": title}, version=version)


def test_a_list_claim_goes_back_to_the_head_in_order_with_its_age(redis_client):
    claims = ClaimStore(redis_client, "t")
    claims.push("t:buf", ["a", "b", "c"])
    since = float(redis_client.get("t:buf:since"))
    first = claims.claim_list("t:buf", 2)
    assert first is not None and first.values == ["a", "b"] and redis_client.lrange("t:buf", 0, -1) == ["c"]
    assert redis_client.get("t:buf:since") is not None, "not empty yet: its age stays"
    second = claims.claim_list("t:buf", 2)
    assert second is not None and second.values == ["c"] and redis_client.get("t:buf:since") is None
    assert claims.claim_list("t:buf", 2) is None
    claims.push("t:buf", ["d"])  # written while the claims are open
    assert claims.reclaim_stale() == 0, "a fresh claim is not reclaimed"
    assert claims.reclaim_stale(older_than=0) == 3
    assert redis_client.lrange("t:buf", 0, -1) == ["a", "b", "c", "d"]
    assert float(redis_client.get("t:buf:since")) == pytest.approx(since), "the oldest item's age is kept"
    assert redis_client.zcard("t:claims") == 0 and redis_client.keys("t:claim:*") == []


def test_a_released_claim_is_gone_and_is_never_put_back(redis_client):
    claims = ClaimStore(redis_client, "t")
    claims.push("t:buf", ["a"])
    claim = claims.claim_list("t:buf", 10)
    assert claim is not None
    with claims.publishing(claim):
        pass
    assert claims.reclaim_stale(older_than=0) == 0 and claims.put_back(claim.id) == -1
    assert redis_client.llen("t:buf") == 0 and redis_client.keys("t:claim*") == []


def test_a_failed_publish_puts_the_claim_back_at_once(redis_client):
    claims = ClaimStore(redis_client, "t")
    claims.push("t:buf", ["a", "b"])
    claim = claims.claim_list("t:buf", 10)
    with pytest.raises(redis.ConnectionError), claims.publishing(claim):
        raise redis.ConnectionError("broker gone")
    assert redis_client.lrange("t:buf", 0, -1) == ["a", "b"] and redis_client.zcard("t:claims") == 0


def test_a_put_back_never_reverts_a_newer_figure_written_during_the_claim(redis_client):
    state = StockState(redis_client, "t")
    old = time.time() - 3600
    claimed = [PendingFigure("V-newer", 1, V1, old, old), PendingFigure("V-older", 2, V2, old, old),
               PendingFigure("V-alone", 3, V1, old, old)]
    state.put_pending_many(claimed)
    claim, figures = state.claim_pending(claimed)
    assert claim is not None and sorted(f.external_id for f in figures) == ["V-alone", "V-newer", "V-older"]
    assert state.pending() == []
    now = time.time()
    newer = PendingFigure("V-newer", 10, V3, now, now)  # a newer figure merged while the flush publishes
    stale = PendingFigure("V-older", 20, V1, now, now)  # an older one (a slow writer): the claimed one wins
    state.put_pending_many([newer, stale])
    assert state.claims.reclaim_stale(older_than=0) == 2
    held = {f.external_id: f for f in state.pending()}
    assert held["V-newer"] == newer, "the newer figure is not reverted"
    assert held["V-older"] == claimed[1] and held["V-alone"] == claimed[2]


def test_claiming_figures_leaves_one_a_newer_merge_replaced_since_it_was_read(redis_client):
    state = StockState(redis_client, "t")
    old = time.time() - 3600
    read = [PendingFigure("V1", 1, V1, old, old), PendingFigure("V2", 1, V1, old, old)]
    state.put_pending_many(read)
    merged = PendingFigure("V2", 5, V2, old, time.time())
    state.put_pending(merged)
    claim, figures = state.claim_pending(read)
    assert claim is not None and figures == [read[0]] and state.pending() == [merged]


def test_catalog_rows_newer_version_wins_in_the_outbox_and_on_put_back(redis_client):
    state = StockState(redis_client, "t")
    assert state.queue_catalog([row("item:A", V2, "a2"), row("item:B", V1, "b1")]) == 2
    assert state.queue_catalog([row("item:A", V1, "a1")]) == 0, "an older version never replaces a newer"
    assert state.queue_catalog([row("item:A", V2, "again")]) == 1, "the same version is rewritten"
    claim, rows = state.claim_catalog(10)
    assert claim is not None and {op.key for op in rows} == {"item:A", "item:B"} and state.outbox_size() == 0
    assert redis_client.get("t:stock:outbox:since") is None
    state.queue_catalog([row("item:A", V3, "a3")])  # a newer row queued while the claim is open
    assert state.claims.reclaim_stale(older_than=0) == 1
    held = {k: Operation.model_validate_json(v) for k, v in redis_client.hgetall(state.outbox_key).items()}
    assert held["item:A"].payload == {"title": "a3"} and held["item:B"].payload == {"title": "b1"}


def test_buffer_ages_report_items_and_the_oldest_item_and_reclaim_for_the_drainer(redis_client):
    stores = Stores(Settings(key_prefix="t", _env_file=None), Mapping(), redis_client)  # type: ignore[call-arg]
    now = time.time()
    state = StockState(redis_client, "t")
    state.put_pending_many([PendingFigure("V1", 1, V1, now - 40, now - 1), PendingFigure("V2", 1, V1, now - 5,
                                                                                         now - 5)])
    state.queue_catalog([row("item:A", V1)])
    ClaimStore(redis_client, "t").push(stores.keys.order_bulk_buffer, ["x", "y"])
    redis_client.set(f"{stores.keys.order_bulk_buffer}:since", now - 12)
    ages = buffer_ages(stores, now=now)
    assert ages["order_bulk"].items == 2 and ages["order_bulk"].oldest_age_seconds == pytest.approx(12, abs=0.01)
    assert ages["stock_pending"].items == 2 and ages["stock_pending"].oldest_age_seconds == pytest.approx(40)
    outbox_age = ages["catalog_outbox"].oldest_age_seconds
    assert ages["catalog_outbox"].items == 1 and outbox_age is not None and outbox_age < 5
    assert ages["order_backfill"].as_dict() == {"items": 0, "oldest_age_seconds": None}
    assert ages["open_claims"].items == 0
    claim, _ = state.claim_catalog(10)
    assert claim is not None
    ages = buffer_ages(stores, now=now + 7)
    assert ages["open_claims"].items == 1 and ages["open_claims"].oldest_age_seconds == pytest.approx(7, abs=1)
    assert ages["catalog_outbox"].items == 0
    assert reclaim_stale_claims(stores) == 0 and reclaim_stale_claims(stores, older_than=0) == 1
    assert buffer_ages(stores)["catalog_outbox"].items == 1


def test_a_pending_figure_stored_as_json_round_trips_for_the_compare(redis_client):
    # claim_pending compares the stored text with the figure re-encoded: they must be the same bytes
    figure = PendingFigure("V1", 3, V1, 1764000000.123456, 1764000001.5)
    StockState(redis_client, "t").put_pending(figure)
    assert redis_client.hget("t:stock:pending", "V1") == json.dumps(asdict(figure))
