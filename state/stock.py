"""Redis store of the stock and catalog flow: what the ERP said, what was planned, what Klaviyo holds.

Keys (all under `<prefix>:stock:`; every one but the in-flight job register expires after the retention,
refreshed on write, so SKUs that stop changing age out):
  rows:<sku text>      hash warehouse -> JSON {"raw": inventory row, "version": its change version}
                       (`sync/stock/rows.py`; the newest version wins)
  locations            hash location code -> JSON {"raw": Location record, "version": its change version}
  locations:computed   digest of the locations every SKU was last recomputed with, to the end (a location task
                       that died part-way is finished by its message delivered again)
  figure               hash variant external_id -> "quantity|version": the newest ATS computed
                       (`sync.stock.versions.FigureVersion`; string order is version order)
  patched              hash variant external_id -> "0|version": newest single stock PATCH started
  planned              hash variant external_id -> "quantity|version": the newest figure planned, written just
                       before it is handed to delivery (or to coalescing); the "previous" of the lane rule, so
                       a pending batch figure is never mistaken for a no-op
  queued               hash variant external_id -> "quantity|version": the newest planned figure handed on;
                       planned but not queued: its worker died before handing it on (or is doing it now)
  pending              hash variant external_id -> JSON PendingFigure (debounced batch figures)
  outbox               hash operation key -> JSON Operation (catalog rows waiting to be packed into bulk jobs)
  outbox:since         when the outbox last became non-empty (state/claims.py)
  skumap               hash SKU text -> variant external_id (learnt from styles; for non key-only templates)
  catalog-skus         hash SKU text -> variant external_id of every SKU of the styles read, live or retired
  catalog-styles       set of style codes (trimmed) the catalog has read
  variant-check:<digest>            "1" once a stock SKU matched its catalog variant under that configuration
  variant-check:<digest>:unmatched  set of up to `variant_check_skus` stock SKUs of read styles that matched none
                       (`sync/stock/variant_ids.py`)
  variant-check:<digest>:unjudged   set of stock SKUs (JSON key and id) of styles not read yet, judged once read
  created:item|variant set of external_ids Klaviyo is known to hold (created, or found there by a create)
  confirmed:<sku text> zset "<ref>:<units>" scored by confirmation time (dynamic high-demand rule)
  inflight             zset catalog bulk job id -> created time (at most 500 in flight)

The flush takes pending figures and outbox rows through claims (`state/claims.py`): claimed, published,
then deleted, so a flush that dies in between loses nothing.

A SKU's rows and its figure change together in ONE atomic step (`update_sku`: WATCH the SKU's rows and the
locations, read them, let the caller compute, write rows and figure in MULTI/EXEC, again on a conflict): two
workers storing rows of one SKU never keep a stale row nor compute from a set of rows that was never stored.
What follows a figure (planned, pending) is written only while it is still the newest one computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any, cast

import redis

from state.claims import Claim, ClaimStore
from state.keys import RedisKeys
from sync.catalog.records import SkuKey
from sync.operations import Operation
from sync.stock.coalesce import PendingFigure
from sync.stock.rows import Versioned, decode, encode

log = logging.getLogger(__name__)

Figure = tuple[int, str]  # (quantity, FigureVersion.encode())
MAX_CONFLICTS = 200  # a SKU step retried this often in a row gives up (the task is retried as a whole)

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
# Keep the newer entry of a hash of {"raw", "version"} JSON: set field ARGV[1] to ARGV[2] only if absent or its
# version is older than ARGV[3] (an entry of before versions has none: any versioned one replaces it).
_PUT_IF_NEWER = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local ok, doc = pcall(cjson.decode, held)
  local v = (ok and type(doc) == 'table' and type(doc['version']) == 'string') and doc['version'] or ''
  if v >= ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
# Planned follows the figure: set planned ARGV[1] to ARGV[2] only while the figure held is still ARGV[2] (no
# newer one was computed meanwhile) and planned holds no newer version (after '|') than ARGV[3].
# KEYS: figure, planned, queued. A variant planned before `queued` existed (an upgraded installation) gets its
# planned figure as queued first: it was on its way, as the code of then planned only what it sent.
_PLAN_IF_CURRENT = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
  local v = string.sub(held, string.find(held, '|', 1, true) + 1)
  if v > ARGV[3] then return 0 end
  redis.call('HSETNX', KEYS[3], ARGV[1], held)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
# Compare-and-set of one hash field: ARGV[2] is the value the caller read ("" = absent), ARGV[3] the new
# one ("" = delete the field).
_SWAP_IF_SAME = """
local held = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if held ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""
# Stock SKUs against the catalog, per configuration digest (KEYS[1] the matched flag, KEYS[2] the unmatched set):
# ARGV[1] '1' when a SKU matched, ARGV[2] the limit, ARGV[3] the TTL, then unmatched SKU examples. Returns
# {matched (0/1), the unmatched set's members once it holds the limit, else nothing}.
_VARIANT_CHECK = """
if ARGV[1] == '1' then redis.call('SET', KEYS[1], '1', 'EX', ARGV[3]) end
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
local limit = tonumber(ARGV[2])
for i = 4, #ARGV do
  if redis.call('SCARD', KEYS[2]) < limit then redis.call('SADD', KEYS[2], ARGV[i]) end
end
if #ARGV >= 4 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
if redis.call('SCARD', KEYS[2]) >= limit then
  local out = redis.call('SMEMBERS', KEYS[2])
  table.insert(out, 1, 0)
  return out
end
return {0}
"""
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


@dataclass(frozen=True)
class SkuStep:
    """What one atomic step of a SKU writes: rows (warehouse -> `sync.stock.rows.encode`) and its newest
    figure (variant external_id, quantity, version), if any."""

    rows: dict[str, str] = dataclass_field(default_factory=dict)
    figure: tuple[str, int, str] | None = None


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
        self._put_if_newer = client.register_script(_PUT_IF_NEWER)
        self._plan_if_current = client.register_script(_PLAN_IF_CURRENT)
        self._swap_if_same = client.register_script(_SWAP_IF_SAME)
        self.conflicts = 0  # SKU steps re-run because another worker changed their rows or the locations
        self._queue_if_not_older = client.register_script(_QUEUE_IF_NOT_OLDER)
        self._variant_check = client.register_script(_VARIANT_CHECK)
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

    # --- ERP rows ---------------------------------------------------------------------------
    def rows_key(self, sku_text: str) -> str:
        return f"{self.p}rows:{sku_text}"

    def update_sku(
        self, sku_text: str, step: Callable[[dict[str, str], dict[str, str]], SkuStep]
    ) -> tuple[SkuStep, bool]:
        """ONE atomic step of a SKU: `step(rows, locations)` gets the SKU's stored rows and the stored
        locations (field -> stored JSON) and says what to write; rows and figure are written only if
        neither hash changed since they were read, else the step runs again on what is stored then. Returns
        what was written and whether the figure was (False: none, or a newer one was already held)."""
        rows_key, locations_key, figure_key = self.rows_key(sku_text), f"{self.p}locations", f"{self.p}figure"
        for _ in range(MAX_CONFLICTS):
            with self.r.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(rows_key, locations_key)
                    rows = cast(dict[str, str], pipe.hgetall(rows_key))
                    decided = step(rows, cast(dict[str, str], pipe.hgetall(locations_key)))
                    if not decided.rows and decided.figure is None:
                        return decided, False
                    pipe.multi()
                    if decided.rows:
                        pipe.hset(rows_key, mapping=decided.rows)  # type: ignore[arg-type]
                        pipe.expire(rows_key, self.ttl)
                    if decided.figure is not None:
                        external_id, quantity, version = decided.figure
                        args = [external_id, f"{quantity}|{version}", version]
                        # EVAL, not EVALSHA: no script check round trip before every step (Redis caches it)
                        pipe.eval(_SET_IF_NEWER, 1, figure_key, *args)
                    written = pipe.execute()
                except redis.WatchError:
                    self.conflicts += 1
                    continue
            return decided, decided.figure is not None and bool(written[-1])
        raise RuntimeError(f"stock rows of {sku_text}: {MAX_CONFLICTS} conflicting writers in a row")

    def sku_text_page(self, cursor: int, count: int) -> tuple[int, list[str]]:
        """One step of a walk over every SKU with stored rows (a location change re-computes every SKU): the
        SKUs of about `count` keys from `cursor` on, and the cursor to go on from (0: the walk is over). A SCAN
        cursor: a SKU stored for the whole walk is returned at least once, whoever resumes the walk."""
        start = len(self.rows_key(""))
        cursor, keys = self.r.scan(cursor, match=self.rows_key("*"), count=count)
        return int(cursor), [str(key)[start:] for key in keys]

    def rows(self, sku_text: str, timezone: str = "UTC") -> dict[str, Versioned]:
        held = self.r.hgetall(self.rows_key(sku_text))
        return {warehouse: decode(text, timezone) for warehouse, text in held.items()}

    def store_location(self, code: str, entry: Versioned) -> bool:
        """Keep the location record unless a newer version of it is held; True when stored."""
        args = [code, encode(entry), entry.version]
        stored = bool(self._put_if_newer(keys=[f"{self.p}locations"], args=args))
        self._touch(f"{self.p}locations")
        return stored

    def locations(self) -> list[dict[str, Any]]:
        return [decode(text).raw for text in self.r.hvals(f"{self.p}locations")]

    def locations_digest(self) -> str:
        """What the stored location records are (a digest of every one): every figure is computed with them."""
        held = sorted(self.r.hgetall(f"{self.p}locations").items())
        return hashlib.sha1(json.dumps(held).encode(), usedforsecurity=False).hexdigest()

    def locations_computed(self) -> str | None:
        """The locations (`locations_digest`) every SKU was last recomputed with, to the end."""
        held = self.r.get(f"{self.p}locations:computed")
        return str(held) if held is not None else None

    def mark_locations_computed(self, digest: str) -> None:
        self.r.set(f"{self.p}locations:computed", digest, ex=self.ttl)

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

    def patched_versions(self, external_ids: list[str]) -> dict[str, str]:
        """The newest single stock PATCH started, per variant that had one (one round trip)."""
        if not external_ids:
            return {}
        raws = self.r.hmget(f"{self.p}patched", external_ids)
        return {e: f[1] for e, raw in zip(external_ids, raws, strict=True) if (f := _figure(raw))}

    def set_planned(self, external_id: str, quantity: int, version: str) -> None:
        self.r.hset(f"{self.p}planned", external_id, f"{quantity}|{version}")

    def plan_if_current(self, external_id: str, quantity: int, version: str) -> bool:
        """Record the figure as planned only while it is still the newest computed for the variant (and
        nothing newer is planned): of two workers planning figures of one variant, the older one stops."""
        keys = [f"{self.p}figure", f"{self.p}planned", f"{self.p}queued"]
        return bool(self._plan_if_current(keys=keys, args=[external_id, f"{quantity}|{version}", version]))

    def plan_view(self, external_id: str) -> tuple[Figure | None, str | None]:
        """The variant's newest planned figure and the newest version known to be on its way (`queued`), read
        together (one round trip). No queued version (a variant not planned since `queued` was recorded, by an
        installation upgraded from before): the planned one is on its way, as the code of then planned only what
        it sent (`plan_if_current` copies it into `queued` before planning the next)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(f"{self.p}planned", external_id)
        pipe.hget(f"{self.p}queued", external_id)
        planned, queued = pipe.execute()
        held = _figure(queued)
        return _figure(planned), held[1] if held else None

    def queued(self, external_id: str, quantity: int, version: str) -> None:
        """This planned figure is on its way (published on a lane, or held in the debounced buffer); kept: the
        newest. A planned figure with an older queued version was planned by a worker that died before sending
        it (or is being sent right now)."""
        self._set_if_newer(keys=[f"{self.p}queued"], args=[external_id, f"{quantity}|{version}", version])

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

    def fold_pending(
        self, external_id: str, fold: Callable[[PendingFigure | None], PendingFigure | None]
    ) -> PendingFigure | None:
        """Replace the variant's pending figure by `fold(held)` (None: drop it) as one compare-and-set, again
        on what is held then if another worker changed it meanwhile: no pending figure is lost to a race."""
        key = self.pending_key
        for _ in range(MAX_CONFLICTS):
            held_raw = self.r.hget(key, external_id) or ""
            folded = fold(PendingFigure(**json.loads(held_raw)) if held_raw else None)
            new_raw = json.dumps(asdict(folded)) if folded is not None else ""
            if new_raw == held_raw or self._swap_if_same(keys=[key], args=[external_id, held_raw, new_raw]):
                return folded
        raise RuntimeError(f"pending figure of {external_id}: {MAX_CONFLICTS} conflicting writers in a row")

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

    def held_catalog(self, limit: int) -> tuple[list[tuple[str, str]], float | None]:
        """Up to `limit` rows of the outbox (field, raw row), to choose which to claim, and when the outbox
        last became non-empty (None: unknown)."""
        rows: list[tuple[str, str]] = []
        for field, raw in self.r.hscan_iter(self.outbox_key, count=limit):
            rows.append((str(field), str(raw)))
            if len(rows) >= limit:
                break
        since = self.r.get(RedisKeys.buffer_since(self.outbox_key))
        return rows, (float(since) if since else None)

    def claim_catalog_rows(self, rows: dict[str, str]) -> tuple[Claim | None, list[Operation]]:
        """Claim these outbox rows unless rewritten since they were read (those wait for a later flush); the
        caller publishes them inside `self.claims.publishing(claim)`. Rows left behind count their age from
        now (they wait for more rows of their kind, or their age bound)."""
        claim = self.claims.claim_if_same(self.outbox_key, rows)
        if claim is None:
            return None, []
        self.r.set(RedisKeys.buffer_since(self.outbox_key), f"{time.time():.6f}", xx=True)
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

    def remember_catalog(self, variant_ids: dict[str, str], styles: Iterable[str]) -> None:
        """What the catalog read: every SKU's variant id (live or retired) and the styles (trimmed: a tenant
        padding its codes in one record is not a new style). What stock's ids are checked against."""
        codes = {style.strip() for style in styles if style.strip()}
        pipe = self.r.pipeline(transaction=False)
        if variant_ids:
            pipe.hset(f"{self.p}catalog-skus", mapping=dict(variant_ids))  # type: ignore[arg-type]
            pipe.expire(f"{self.p}catalog-skus", self.ttl)
        if codes:
            pipe.sadd(f"{self.p}catalog-styles", *codes)
            pipe.expire(f"{self.p}catalog-styles", self.ttl)
        pipe.execute()

    def catalog_view(self, skus: list[SkuKey]) -> tuple[list[str | None], list[bool]]:
        """For each SKU: the catalog's variant id of its key (None: none), and whether the catalog read its style
        (one round trip)."""
        if not skus:
            return [], []
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(f"{self.p}catalog-skus", [sku.text for sku in skus])
        pipe.smismember(f"{self.p}catalog-styles", [sku.style.strip() for sku in skus])
        ids, known = pipe.execute()
        return [str(v) if v else None for v in ids], [bool(flag) for flag in known]

    def hold_unjudged(self, digest: str, entries: list[str], cap: int) -> None:
        """Stock SKUs of styles the catalog has not read, to be judged once it has (at most about `cap`)."""
        key = f"{self.p}variant-check:{digest}:unjudged"
        if entries and int(self.r.scard(key)) < cap:
            pipe = self.r.pipeline(transaction=False)
            pipe.sadd(key, *entries)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def unjudged(self, digest: str) -> list[str]:
        return sorted(str(entry) for entry in self.r.smembers(f"{self.p}variant-check:{digest}:unjudged"))

    def judged(self, digest: str, entries: list[str]) -> None:
        if entries:
            self.r.srem(f"{self.p}variant-check:{digest}:unjudged", *entries)

    def variant_check(self, digest: str, matched: bool, unmatched: list[str], limit: int) -> tuple[bool, list[str]]:
        """Note what stock's SKUs showed under one configuration: (whether any SKU ever matched, and - while none
        did - the unmatched SKUs once `limit` distinct ones were seen, else [])."""
        key = f"{self.p}variant-check:{digest}"
        answer = self._variant_check(keys=[key, f"{key}:unmatched"],
                                     args=["1" if matched else "0", limit, self.ttl, *unmatched])
        return bool(int(answer[0])), [str(member) for member in answer[1:]]

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
