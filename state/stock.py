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
  skumap               hash SKU text -> variant external_id (learnt from styles; for non key-only templates)
  created:item|variant set of external_ids Klaviyo is known to hold (created or seen as 409 duplicate)
  confirmed:<sku text> zset "<ref>:<units>" scored by confirmation time (dynamic high-demand rule)
  inflight             zset catalog bulk job id -> created time (at most 500 in flight)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import redis

from state.keys import RedisKeys
from sync.catalog.records import SkuKey
from sync.operations import Operation
from sync.stock.coalesce import PendingFigure

Figure = tuple[int, str]  # (quantity, StockVersion.encode())

# Compare-and-delete: a pending figure is removed only if nobody merged a newer one since it was read.
_DELETE_IF_SAME = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0"  # noqa: E501
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
        self._delete_if_same = client.register_script(_DELETE_IF_SAME)
        self._set_if_newer = client.register_script(_SET_IF_NEWER)

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

    def take_pending(self, figures: list[PendingFigure]) -> list[PendingFigure]:
        """Remove due figures, except those a newer merge replaced meanwhile (they wait for their turn)."""
        pipe = self.r.pipeline(transaction=False)
        for figure in figures:
            encoded = json.dumps(asdict(figure))
            self._delete_if_same(keys=[f"{self.p}pending"], args=[figure.external_id, encoded], client=pipe)
        taken = pipe.execute()
        return [figure for figure, removed in zip(figures, taken, strict=True) if removed]

    # --- catalog outbox ----------------------------------------------------------------------
    def queue_catalog(self, ops: Iterable[Operation]) -> int:
        """Hold catalog rows for bulk packing; a newer version of the same object replaces an older one."""
        count = 0
        key = f"{self.p}outbox"
        for op in ops:
            held = self.r.hget(key, op.key)
            if held is not None:
                older = Operation.model_validate_json(held)
                if (older.version or "") > (op.version or ""):
                    continue
            self.r.hset(key, op.key, op.model_dump_json())
            count += 1
        return count

    def take_catalog(self, limit: int) -> list[Operation]:
        """Up to `limit` held rows, removed from the outbox (the caller enqueues them)."""
        key = f"{self.p}outbox"
        keys: list[str] = []
        for field, _ in self.r.hscan_iter(key, count=limit):
            keys.append(field)
            if len(keys) >= limit:
                break
        if not keys:
            return []
        pipe = self.r.pipeline(transaction=True)
        pipe.hmget(key, keys)
        pipe.hdel(key, *keys)
        raws, _ = pipe.execute()
        return [Operation.model_validate_json(raw) for raw in raws if raw]

    def outbox_size(self) -> int:
        return int(self.r.hlen(f"{self.p}outbox"))

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
