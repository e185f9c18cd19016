"""Stock scans: which inventory rows a poll cycle (or a CSV inventory drop) delivers, so that no SKU's figure is
computed while some of its rows are still on their way.

A scan is one poll cycle of the inventory resource, or one CSV inventory report. Before a page's (or a
chunk's) rows are handed to the queues, the reader registers them here (`expect`): one entry per delivered
row (``<record key>#<change version>`` for the poller, the report line's index for a drop), with its SKU and
warehouse. The worker that stores a row settles its entry (`settle`), in the same call that decides which of
its SKUs may be computed now. A SKU is *held* (not computed, not sent) while a live scan either is still open
and touched it (a later page may bring its other warehouses) or is closed with entries of it not stored yet.
At the end of its cycle the reader closes the scan (`close_source`, which also closes older scans of the same
source that never finished: the new cycle re-read their window); the SKUs already complete are released by a
sweep over the scan's SKUs (`release_step`, run by the `bcsync.stock.release_scan` task, chunk by chunk);
those completed later are released by the worker that stores their last row. Every decision is one Lua call,
so a close and the last row's settle cannot both miss a SKU: whichever runs second sees the other's write.
Releasing twice is harmless (figures are newest-wins). A scan whose rows stop arriving (nothing expected or
stored for the bound) is expired (`expire`): swept like a closed one, its held SKUs are released as stored and
the sweep reports which rows never came (`expired_report`). A scan to sweep stays listed until its sweep
finished (`finish`), so a sweep lost with its worker (or its publisher) is found again (`stale_sweeps`).

An entry of a scan this store does not know (expired, or lost with Redis) is complete: nothing to wait for.
A redelivered message settles an entry already settled: nothing counts twice.

Keys (under ``<prefix>:stock:``; a scan's keys expire after `ttl_seconds` as a safety net, the sweep or the
last settle deletes them first):
  scans               zset scan id -> last activity (a row expected or stored, the close): the live scans
  sweeps              zset scan id -> last progress: closed or expired scans whose sweep has not finished
  held                zset SKU text -> since when its figure is held (for `bcsync status`)
  scan:<id>           hash source, opened, closed (empty while open), rows, stored, swept, expired, reported
  scan:<id>:expect    hash entry -> JSON [SKU text, warehouse]: rows expected and not stored yet
  scan:<id>:missing   hash SKU text -> entries of it not stored yet (no field: none)
  scan:<id>:skus      set of SKU texts: every SKU the scan touched
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from state.keys import RedisKeys

SCAN_TTL_SECONDS = 7 * 86400
SWEEP_CHUNK = 500  # SKUs per release decision during a sweep: a huge first load does not block Redis

# held_by(live, sku): does a live scan hold this SKU (open and touched it, or closed with rows of it missing)?
_HELD_BY = """
local function held_by(prefix, live, sku)
  for _, s in ipairs(live) do
    local base = prefix .. s
    local closed = redis.call('HGET', base, 'closed')
    if (not closed or closed == '') and redis.call('SISMEMBER', base .. ':skus', sku) == 1 then
      return true
    end
    if tonumber(redis.call('HGET', base .. ':missing', sku) or '0') > 0 then
      return true
    end
  end
  return false
end
local function drop(base)
  redis.call('DEL', base, base .. ':expect', base .. ':missing', base .. ':skus')
end
"""

# KEYS: scans; ARGV: scan prefix, scan id, source, now, ttl, then (entry, sku, warehouse) triples. Returns how
# many entries were new.
_EXPECT = """
local prefix, scan, now, ttl = ARGV[1], ARGV[2], ARGV[4], tonumber(ARGV[5])
local base = prefix .. scan
redis.call('HSETNX', base, 'source', ARGV[3])
redis.call('HSETNX', base, 'opened', now)
redis.call('HSETNX', base, 'closed', '')
local added = 0
for i = 6, #ARGV, 3 do
  local sku = ARGV[i + 1]
  if redis.call('HSETNX', base .. ':expect', ARGV[i], cjson.encode({sku, ARGV[i + 2]})) == 1 then
    redis.call('HINCRBY', base .. ':missing', sku, 1)
    added = added + 1
  end
  redis.call('SADD', base .. ':skus', sku)
end
redis.call('HINCRBY', base, 'rows', added)
redis.call('ZADD', KEYS[1], now, scan)
for _, key in ipairs({base, base .. ':expect', base .. ':missing', base .. ':skus'}) do
  redis.call('EXPIRE', key, ttl)
end
return added
"""

# KEYS: scans, held; ARGV: scan prefix, now, n, then n (scan, entry) pairs, then the SKU texts to decide. An entry
# is marked stored in every live scan of its scan's source that expects it. Returns the SKUs no live scan holds
# (released: computed by the caller now); the others are noted as held.
_SETTLE = _HELD_BY + """
local prefix, now, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local source_of = {}
for _, s in ipairs(live) do source_of[s] = redis.call('HGET', prefix .. s, 'source') or '' end
local seen, scans = {}, {}
for i = 0, n - 1 do
  local scan, entry = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
  local source = source_of[scan]
  if source then
    -- the same change of the same record, expected by another live scan of the source (a cycle that stopped
    -- after registering it, re-read by this one), is stored as well
    for _, s in ipairs(live) do
      if source_of[s] == source then
        local base = prefix .. s
        local expected = redis.call('HGET', base .. ':expect', entry)
        if expected then  -- the first delivery of this row: a redelivery finds it settled already
          redis.call('HDEL', base .. ':expect', entry)
          local sku = cjson.decode(expected)[1]
          if redis.call('HINCRBY', base .. ':missing', sku, -1) <= 0 then
            redis.call('HDEL', base .. ':missing', sku)
          end
          redis.call('HINCRBY', base, 'stored', 1)
          redis.call('ZADD', KEYS[1], 'XX', now, s)
          if not seen[s] then
            seen[s] = true
            table.insert(scans, s)
          end
        end
      end
    end
    redis.call('ZADD', KEYS[1], 'XX', now, scan)
  end
end
for _, scan in ipairs(scans) do  -- a closed scan with nothing missing holds nothing any more
  local base = prefix .. scan
  local closed = redis.call('HGET', base, 'closed')
  if closed and closed ~= '' and redis.call('HLEN', base .. ':missing') == 0 then
    redis.call('ZREM', KEYS[1], scan)
    if redis.call('HGET', base, 'swept') == '1' then drop(base) end
  end
end
live = redis.call('ZRANGE', KEYS[1], 0, -1)
local released = {}
for j = 4 + 2 * n, #ARGV do
  local sku = ARGV[j]
  if held_by(prefix, live, sku) then
    redis.call('ZADD', KEYS[2], 'NX', now, sku)
  else
    redis.call('ZREM', KEYS[2], sku)
    table.insert(released, sku)
  end
end
if #released > 0 then  -- computed by the caller now: the sweeps of the closed scans it completed need not
  for _, scan in ipairs(scans) do
    local closed = redis.call('HGET', prefix .. scan, 'closed')
    if closed and closed ~= '' then redis.call('SREM', prefix .. scan .. ':skus', unpack(released)) end
  end
end
return released
"""

# KEYS: scans; ARGV: scan prefix, n, then n (scan, entry) pairs, then SKU texts. Read-only: the SKUs no live scan
# would hold once these entries are stored (as `_SETTLE` would mark them).
_COMPLETE_WITH = """
local prefix, n = ARGV[1], tonumber(ARGV[2])
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local source_of = {}
for _, s in ipairs(live) do source_of[s] = redis.call('HGET', prefix .. s, 'source') or '' end
local mine = {}
for i = 0, n - 1 do
  local source = source_of[ARGV[3 + 2 * i]]
  if source then
    for _, s in ipairs(live) do
      if source_of[s] == source then
        local expected = redis.call('HGET', prefix .. s .. ':expect', ARGV[4 + 2 * i])
        if expected then
          local sku = cjson.decode(expected)[1]
          mine[s] = mine[s] or {}
          mine[s][sku] = (mine[s][sku] or 0) + 1
        end
      end
    end
  end
end
local out = {}
for j = 3 + 2 * n, #ARGV do
  local sku, held = ARGV[j], false
  for _, s in ipairs(live) do
    local base = prefix .. s
    local closed = redis.call('HGET', base, 'closed')
    if (not closed or closed == '') and redis.call('SISMEMBER', base .. ':skus', sku) == 1 then held = true end
    local ours = (mine[s] and mine[s][sku]) or 0
    if tonumber(redis.call('HGET', base .. ':missing', sku) or '0') - ours > 0 then held = true end
    if held then break end
  end
  if not held then table.insert(out, sku) end
end
return out
"""

# KEYS: scans, held; ARGV: scan prefix, then SKU texts. Releases those no live scan holds (returned).
_RELEASE = _HELD_BY + """
local prefix = ARGV[1]
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local released = {}
for j = 2, #ARGV do
  if not held_by(prefix, live, ARGV[j]) then
    redis.call('ZREM', KEYS[2], ARGV[j])
    table.insert(released, ARGV[j])
  end
end
return released
"""

# KEYS: scans; ARGV: scan prefix, SKU texts. Returns those a live scan holds (nothing changes).
_HOLDING = _HELD_BY + """
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
local held = {}
for j = 2, #ARGV do
  if held_by(ARGV[1], live, ARGV[j]) then table.insert(held, ARGV[j]) end
end
return held
"""

# KEYS: scans, sweeps; ARGV: scan prefix, source, now. Closes every open live scan of the source; a scan with nothing
# missing leaves the live set at once. One of whose rows some were stored already is listed to be swept and
# returned; one of which none was (a one-page cycle closes before handing its page on) has no complete SKU, so no
# sweep: its last row's settle drops it.
_CLOSE = _HELD_BY + """
local prefix, source, now = ARGV[1], ARGV[2], ARGV[3]
local closed = {}
for _, scan in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local base = prefix .. scan
  local meta = redis.call('HMGET', base, 'source', 'closed', 'stored')
  if meta[1] == source and (not meta[2] or meta[2] == '') then
    redis.call('HSET', base, 'closed', now)
    local complete = redis.call('HLEN', base .. ':missing') == 0
    if complete then
      redis.call('ZREM', KEYS[1], scan)
    else
      redis.call('ZADD', KEYS[1], 'XX', now, scan)
    end
    if tonumber(meta[3] or '0') > 0 then
      redis.call('ZADD', KEYS[2], now, scan)
      table.insert(closed, scan)
    elseif complete then
      drop(base)
    else
      redis.call('HSET', base, 'swept', '1')
    end
  end
end
return closed
"""

# KEYS: scans, sweeps; ARGV: scan prefix, scan id. The sweep is done: drop the scan unless it still holds rows
# (then the settle of its last row drops it).
_FINISH = _HELD_BY + """
local base = ARGV[1] .. ARGV[2]
redis.call('ZREM', KEYS[2], ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  drop(base)
  return 1
end
redis.call('HSET', base, 'swept', '1')
return 0
"""

# KEYS: scans, sweeps; ARGV: scan prefix, cutoff, now. Live scans with no activity since the cutoff leave the
# live set, marked expired and listed to be swept; returns them.
_EXPIRE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
for _, scan in ipairs(expired) do
  redis.call('ZREM', KEYS[1], scan)
  redis.call('HSET', ARGV[1] .. scan, 'expired', ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], scan)
end
return expired
"""


def row_entry(key: str, version: str) -> str:
    """The entry of one delivered change of an inventory record (a redelivery has the same one)."""
    return f"{key}#{version}"


@dataclass(frozen=True)
class ScanRows:
    """The scan the records of one message belong to, and each record's entry (same order as the records)."""

    scan: str
    entries: list[str]

    def entry(self, index: int) -> str:
        return self.entries[index] if 0 <= index < len(self.entries) else ""


@dataclass(frozen=True)
class ExpectedRow:
    entry: str
    sku: str  # the SKU's text (`SkuKey.text`), as the stock store keys its rows
    warehouse: str


@dataclass
class ExpiredScan:
    """A scan whose rows stopped arriving: `missing` = SKU text -> warehouses of the rows never stored."""

    scan: str
    source: str
    opened: float | None
    closed: float | None  # None: the read itself never finished (the reader stopped)
    missing: dict[str, list[str]] = field(default_factory=dict)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class StockScans:
    def __init__(self, client: redis.Redis, key_prefix: str, ttl_seconds: float = SCAN_TTL_SECONDS) -> None:
        self.r = client
        stock = RedisKeys(key_prefix).stock
        self.scans_key = f"{stock}scans"
        self.sweeps_key = f"{stock}sweeps"
        self.held_key = f"{stock}held"
        self.scan_prefix = f"{stock}scan:"
        self.ttl = int(ttl_seconds)
        self._expect = client.register_script(_EXPECT)
        self._settle = client.register_script(_SETTLE)
        self._release = client.register_script(_RELEASE)
        self._holding = client.register_script(_HOLDING)
        self._complete_with = client.register_script(_COMPLETE_WITH)
        self._close = client.register_script(_CLOSE)
        self._finish = client.register_script(_FINISH)
        self._expire = client.register_script(_EXPIRE)

    @staticmethod
    def new_id() -> str:
        return f"{int(time.time())}-{uuid.uuid4().hex[:10]}"

    def key(self, scan: str) -> str:
        return self.scan_prefix + scan

    # --- the reader ------------------------------------------------------------------------------
    def expect(self, scan: str, source: str, rows: list[ExpectedRow], now: float | None = None) -> int:
        """Register rows the scan is about to hand to the queues (before they are handed on)."""
        now = time.time() if now is None else now
        args: list[str] = [self.scan_prefix, scan, source, f"{now:.6f}", str(self.ttl)]
        for row in rows:
            args += [row.entry, row.sku, row.warehouse]
        return int(self._expect(keys=[self.scans_key], args=args))

    def close_source(self, source: str, now: float | None = None) -> list[str]:
        """The source's read is complete: close its open scans (this cycle's and any older one that never
        finished: this cycle re-read their window). Returns those to be swept (some of their rows were stored
        already, so some SKUs may be complete now)."""
        now = time.time() if now is None else now
        keys = [self.scans_key, self.sweeps_key]
        return list(self._close(keys=keys, args=[self.scan_prefix, source, f"{now:.6f}"]))

    # --- the worker storing rows -----------------------------------------------------------------
    def settle(self, stored: list[tuple[str, str]], skus: Iterable[str], now: float | None = None) -> list[str]:
        """Mark stored rows (`(scan, entry)` pairs; an empty scan marks nothing) and decide, for the SKUs of
        those rows (texts), which no live scan holds: those are returned, to be computed now; the others are
        held."""
        texts = list(dict.fromkeys(skus))
        if not texts and not stored:
            return []
        now = time.time() if now is None else now
        args: list[str] = [self.scan_prefix, f"{now:.6f}", str(len(stored))]
        for scan, entry in stored:
            args += [scan, entry]
        return list(self._settle(keys=[self.scans_key, self.held_key], args=[*args, *texts]))

    def complete_with(self, stored: list[tuple[str, str]], skus: Iterable[str]) -> set[str]:
        """The SKUs (texts) no live scan would hold once these rows are stored (`settle` of the same pairs),
        asked before storing them: such a SKU's rows can be stored and its figure computed in one step. Only a
        hint - `settle` decides - but a SKU it names was complete for every scan it knew."""
        texts = list(dict.fromkeys(skus))
        if not texts:
            return set()
        args: list[str] = [self.scan_prefix, str(len(stored))]
        for scan, entry in stored:
            args += [scan, entry]
        return set(self._complete_with(keys=[self.scans_key], args=[*args, *texts]))

    def holding(self, skus: Iterable[str]) -> set[str]:
        """The SKUs (texts) a live scan holds right now (a location change must not compute them yet)."""
        texts = list(dict.fromkeys(skus))
        if not texts:
            return set()
        return set(self._holding(keys=[self.scans_key], args=[self.scan_prefix, *texts]))

    # --- the release sweep -----------------------------------------------------------------------
    def release_step(self, scan: str, cursor: int = 0, count: int = SWEEP_CHUNK) -> tuple[int, list[str]]:
        """One step of the sweep of a closed or expired scan: the next SKUs it touched (from `cursor`) that no
        live scan holds any more, released in one atomic decision. Returns the next cursor (0: the last step;
        then compute the SKUs and `finish`)."""
        next_cursor, members = self.r.sscan(f"{self.key(scan)}:skus", cursor, count=count)
        self.r.zadd(self.sweeps_key, {scan: time.time()}, xx=True)  # progress: not a lost sweep
        if not members:
            return int(next_cursor), []
        released = self._release(keys=[self.scans_key, self.held_key], args=[self.scan_prefix, *members])
        return int(next_cursor), list(released)

    def finish(self, scan: str) -> None:
        """The sweep is done and its SKUs computed: the scan is dropped (once it holds no row any more)."""
        self._finish(keys=[self.scans_key, self.sweeps_key], args=[self.scan_prefix, scan])

    def stale_sweeps(self, quiet_seconds: float, now: float | None = None) -> list[str]:
        """Scans to sweep whose sweep made no progress for `quiet_seconds` (lost with a worker, or never
        published): to be swept again (a sweep is idempotent). Each counts as progressing from now, so a sweep
        waiting in a long queue is not handed out again at every check."""
        now = time.time() if now is None else now
        stale = list(self.r.zrangebyscore(self.sweeps_key, "-inf", f"{now - quiet_seconds:.6f}"))
        if stale:
            self.r.zadd(self.sweeps_key, dict.fromkeys(stale, now), xx=True)
        return stale

    # --- the bound ---------------------------------------------------------------------------------
    def expire(self, quiet_seconds: float, now: float | None = None) -> list[str]:
        """Scans with nothing expected, stored or closed for `quiet_seconds`: out of the live set (they hold no
        SKU any more) and listed to be swept. Returns them."""
        now = time.time() if now is None else now
        args = [self.scan_prefix, f"{now - quiet_seconds:.6f}", f"{now:.6f}"]
        return list(self._expire(keys=[self.scans_key, self.sweeps_key], args=args))

    def expired_report(self, scan: str) -> ExpiredScan | None:
        """What an expired scan never got, once (None: not expired, or already reported)."""
        base = self.key(scan)
        meta = self.r.hgetall(base)
        if not meta.get("expired") or meta.get("reported"):
            return None
        gone = ExpiredScan(scan, str(meta.get("source", "")), _float(meta.get("opened")), _float(meta.get("closed")))
        for raw in self.r.hvals(f"{base}:expect"):
            sku, warehouse = json.loads(raw)
            gone.missing.setdefault(sku, []).append(warehouse)
        return gone

    def reported(self, scan: str) -> None:
        self.r.hset(self.key(scan), "reported", "1")

    # --- operators ---------------------------------------------------------------------------------
    def held(self, now: float | None = None) -> tuple[int, float | None]:
        """How many SKUs' figures are held, and since when the oldest one (None: nothing held)."""
        count = int(self.r.zcard(self.held_key))
        if not count:
            return 0, None
        oldest = self.r.zrange(self.held_key, 0, 0, withscores=True)
        return count, float(oldest[0][1]) if oldest else None

    def live(self) -> int:
        return int(self.r.zcard(self.scans_key))
