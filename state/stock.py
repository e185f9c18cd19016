"""Redis store of the stock and catalog flow: what the ERP said, what was planned, what Klaviyo holds.

Keys (all under `<prefix>:stock:`; every one but the in-flight job register expires after the retention,
refreshed on write, so SKUs that stop changing age out):
  rows:<sku text>      hash warehouse -> latest raw inventory row (newest `last_mod` wins)
  locations            hash location code -> raw Location record
  figure               hash variant external_id -> "quantity|version": the newest ATS computed
  patched              hash variant external_id -> "0|version": newest single stock PATCH started
  planned              hash variant external_id -> "quantity|version": the figure last handed to delivery
                       (or to coalescing); the "previous" of the lane rule, so a pending batch figure is never
                       mistaken for a no-op
  pending              hash variant external_id -> JSON PendingFigure (debounced batch figures)
  outbox               hash operation key -> JSON Operation (catalog rows waiting to be packed into bulk jobs)
  outbox:since         when the outbox last became non-empty (state/claims.py)
  skumap               hash SKU text -> variant external_id (learnt from styles; for non key-only templates)
  created:item|variant set of external_ids Klaviyo is known to hold (created or seen as 409 duplicate)
  confirmed:<sku text> zset "<ref>:<units>" scored by confirmation time (dynamic high-demand rule)
  inflight             zset catalog bulk job id -> created time (at most 500 in flight)

The flush takes pending figures and outbox rows through claims (`state/claims.py`): claimed, published,
then deleted, so a flush that dies in between loses nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import redis

from state.claims import Claim, ClaimStore
from state.keys import RedisKeys
from sync.catalog.records import SkuKey
from sync.operations import Operation
from sync.stock.coalesce import PendingFigure

Figure = tuple[int, str]  # (quantity, StockVersion.encode())

# Queue catalog rows (ARGV: now, then key, row, version triples) unless the outbox holds a newer version of
# the row; note when the outbox became non-empty in the same step (its age for operators).
_QUEUE_IF_NOT_OLDER = """
local queued = 0
for i = 2, #ARGV, 3 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  local older = false
  if held then
    local ok, doc = pcall(cjson.decode, held)
    local v = (ok and type(doc) == 'table' and type(doc['version']) == 'string') and doc['version'] or ''
    older = v > ARGV[i + 2]
  end
  if not older then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    queued = queued + 1
  end
end
if queued > 0 then redis.call('SET', KEYS[2], ARGV[1], 'NX') end
return queued
"""
QUEUE_CHUNK = 500  # rows per script call: a large style page does not block Redis in one long script
# Keep the newer figure: set field to ARGV[2] only if absent or its version (after '|') is older.
_SET_IF_NEWER = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local v = string.sub(held, string.find(held, '|', 1, true) + 1)
  if v >= ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def _figure(raw: str | None) -> Figure | None:
    if not raw:
        return None
    quantity, _, version = raw.partition("|")
    return int(quantity), version


class StockState:
    def __init__(self, client: redis.Redis, key_prefix: str, ttl_days: int = 400) -> None:
        self.r = client
        self.p = RedisKeys(key_prefix).stock
        self.ttl = int(ttl_days * 86400)
        self._set_if_newer = client.register_script(_SET_IF_NEWER)
        self._queue_if_not_older = client.register_script(_QUEUE_IF_NOT_OLDER)
        self.claims = ClaimStore(client, key_prefix)

    @property
    def pending_key(self) -> str:
        return f"{self.p}pending"

    @property
    def outbox_key(self) -> str:
        return f"{self.p}outbox"

    def _touch(self, *keys: str) -> None:
        pipe = self.r.pipeline(transaction=False)
        for key in keys:
            pipe.expire(key, self.ttl)
        pipe.execute()

    # --- ERP rows ----------------------------------------------------------------------------
    def store_row(self, sku: SkuKey, warehouse: str, raw: dict[str, Any], last_mod: str) -> bool:
        """Keep the row unless an already stored one is newer (a re-read overlap row changes nothing)."""
        key = f"{self.p}rows:{sku.text}"
        held = self.r.hget(key, warehouse)
        if held is not None and json.loads(held)["last_mod"] > last_mod:
            return False
        self.r.hset(key, warehouse, json.dumps({"raw": raw, "last_mod": last_mod}, default=str))
        self._touch(key)
        return True

    def rows(self, sku: SkuKey) -> list[dict[str, Any]]:
        held = self.r.hgetall(f"{self.p}rows:{sku.text}")
        return [json.loads(value)["raw"] for value in held.values()]

    def all_rows(self) -> Iterable[list[dict[str, Any]]]:
        """Every SKU's stored rows (a location change re-computes every SKU it may concern)."""
        for key in self.r.scan_iter(f"{self.p}rows:*", count=1000):
            yield [json.loads(value)["raw"] for value in self.r.hgetall(key).values()]

    def store_location(self, code: str, raw: dict[str, Any]) -> None:
        self.r.hset(f"{self.p}locations", code, json.dumps(raw, default=str))
        self._touch(f"{self.p}locations")

    def locations(self) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.r.hgetall(f"{self.p}locations").values()]

    # --- figures -----------------------------------------------------------------------------
    def set_figure(self, external_id: str, quantity: int, version: str) -> bool:
        """Record the newest ATS computed for a variant; False when a newer one is already held."""
        args = [external_id, f"{quantity}|{version}", version]
        return bool(self._set_if_newer(keys=[f"{self.p}figure"], args=args))

    def figure(self, external_id: str) -> Figure | None:
        return _figure(self.r.hget(f"{self.p}figure", external_id))

    def figures(self, external_ids: list[str]) -> dict[str, Figure]:
        if not external_ids:
            return {}
        raws = self.r.hmget(f"{self.p}figure", external_ids)
        return {e: f for e, raw in zip(external_ids, raws, strict=True) if (f := _figure(raw))}

    def patch_started(self, external_id: str, version: str) -> None:
        """A single stock PATCH of this version is about to be sent (kept: the newest one started)."""
        self._set_if_newer(keys=[f"{self.p}patched"], args=[external_id, f"0|{version}", version])

    def patched_version(self, external_id: str) -> str | None:
        figure = _figure(self.r.hget(f"{self.p}patched", external_id))
        return figure[1] if figure else None

    def set_planned(self, external_id: str, quantity: int, version: str) -> None:
        self.r.hset(f"{self.p}planned", external_id, f"{quantity}|{version}")

    def planned(self, external_ids: list[str]) -> dict[str, Figure]:
        if not external_ids:
            return {}
        raws = self.r.hmget(f"{self.p}planned", external_ids)
        return {e: f for e, raw in zip(external_ids, raws, strict=True) if (f := _figure(raw))}

    # --- debounced batch figures -------------------------------------------------------------
    def pending(self) -> list[PendingFigure]:
        return [PendingFigure(**json.loads(v)) for v in self.r.hvals(f"{self.p}pending")]

    def held_pending(self, external_id: str) -> PendingFigure | None:
        raw = self.r.hget(f"{self.p}pending", external_id)
        return PendingFigure(**json.loads(raw)) if raw else None

    def put_pending(self, figure: PendingFigure) -> None:
        self.r.hset(f"{self.p}pending", figure.external_id, json.dumps(asdict(figure)))

    def put_pending_many(self, figures: Iterable[PendingFigure]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for figure in figures:
            pipe.hset(f"{self.p}pending", figure.external_id, json.dumps(asdict(figure)))
        pipe.execute()

    def drop_pending(self, external_id: str) -> None:
        self.r.hdel(f"{self.p}pending", external_id)

    def claim_pending(self, figures: list[PendingFigure]) -> tuple[Claim | None, list[PendingFigure]]:
        """Claim due figures, except those a newer merge replaced meanwhile (they wait for their turn); the
        caller publishes them inside `self.claims.publishing(claim)`."""
        expected = {figure.external_id: json.dumps(asdict(figure)) for figure in figures}
        claim = self.claims.claim_if_same(self.pending_key, expected, track_since=False)
        if claim is None:
            return None, []
        return claim, [PendingFigure(**json.loads(raw)) for raw in claim.values]

    def oldest_pending_seen(self) -> float | None:
        """When the longest-waiting pending figure first became pending (None: nothing pending)."""
        return min((figure.first_seen for figure in self.pending()), default=None)

    # --- catalog outbox ----------------------------------------------------------------------
    def queue_catalog(self, ops: Iterable[Operation]) -> int:
        """Hold catalog rows for bulk packing; a newer version of the same object replaces an older one."""
        rows = [(op.key, op.model_dump_json(), op.version or "") for op in ops]
        keys = [self.outbox_key, RedisKeys.buffer_since(self.outbox_key)]
        count = 0
        for start in range(0, len(rows), QUEUE_CHUNK):
            args = [f"{time.time():.6f}", *(part for row in rows[start:start + QUEUE_CHUNK] for part in row)]
            count += int(self._queue_if_not_older(keys=keys, args=args))
        return count

    def claim_catalog(self, limit: int) -> tuple[Claim | None, list[Operation]]:
        """Claim up to `limit` held rows out of the outbox; the caller publishes them inside
        `self.claims.publishing(claim)`."""
        fields: list[str] = []
        for field, _ in self.r.hscan_iter(self.outbox_key, count=limit):
            fields.append(field)
            if len(fields) >= limit:
                break
        claim = self.claims.claim_fields(self.outbox_key, fields)
        if claim is None:
            return None, []
        return claim, [Operation.model_validate_json(raw) for raw in claim.values]

    def outbox_size(self) -> int:
        return int(self.r.hlen(self.outbox_key))

    # --- identities --------------------------------------------------------------------------
    def remember_variants(self, mapping: dict[str, str]) -> None:
        if mapping:
            self.r.hset(f"{self.p}skumap", mapping=dict(mapping))  # type: ignore[arg-type]
            self._touch(f"{self.p}skumap")

    def variant_of(self, sku: SkuKey) -> str | None:
        value = self.r.hget(f"{self.p}skumap", sku.text)
        return str(value) if value else None

    def mark_created(self, kind: str, external_ids: Iterable[str]) -> None:
        ids = list(external_ids)
        if ids:
            self.r.sadd(f"{self.p}created:{kind}", *ids)
            self._touch(f"{self.p}created:{kind}")

    def created(self, kind: str, external_ids: list[str]) -> set[str]:
        if not external_ids:
            return set()
        flags = self.r.smismember(f"{self.p}created:{kind}", external_ids)
        return {e for e, flag in zip(external_ids, flags, strict=True) if flag}

    # --- dynamic high demand -----------------------------------------------------------------
    def record_confirmed(self, sku: SkuKey, ref: str, units: float, at: float, window_hours: int) -> None:
        """Units of a SKU confirmed on an order line (`ref` makes a re-read line count once)."""
        key = f"{self.p}confirmed:{sku.text}"
        stale = [member for member, _ in self.r.zscan_iter(key, match=f"{ref}:*") if member != f"{ref}:{units}"]
        if stale:  # an amended line: its new quantity replaces the old one
            self.r.zrem(key, *stale)
        self.r.zadd(key, {f"{ref}:{units}": at})
        self.r.zremrangebyscore(key, 0, time.time() - window_hours * 3600)
        self.r.expire(key, window_hours * 3600 + 60)

    def confirmed_units(self, sku: SkuKey, window_hours: int, now: float | None = None) -> float:
        now = now or time.time()
        members = self.r.zrangebyscore(f"{self.p}confirmed:{sku.text}", now - window_hours * 3600, now)
        return sum(float(m.rsplit(":", 1)[1]) for m in members)

    # --- catalog bulk jobs in flight ---------------------------------------------------------
    def count_wait(self, key: str) -> int:
        """How many times a row has been put back to wait (for its item); forgotten after an hour."""
        name = f"{self.p}waits:{key}"
        count = int(self.r.incr(name))
        self.r.expire(name, 3600)
        return count

    def jobs_in_flight(self, stale_after: float = 86400.0) -> int:
        key = f"{self.p}inflight"
        self.r.zremrangebyscore(key, 0, time.time() - stale_after)  # a lost follow-up frees its slot
        return int(self.r.zcard(key))

    def job_started(self, job_id: str) -> None:
        self.r.zadd(f"{self.p}inflight", {job_id: time.time()})

    def job_finished(self, job_id: str) -> None:
        self.r.zrem(f"{self.p}inflight", job_id)
