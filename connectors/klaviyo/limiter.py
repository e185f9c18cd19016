"""One Klaviyo rate budget per endpoint, shared by every worker on every machine, held in Redis.

Klaviyo counts each endpoint's requests per account in fixed windows of one second (burst) and one
minute (steady). The fleet takes `share` of each window (rounded down, at least 1); lanes other than
fast may take at most (1 - fast_reserve) of that, and the batch lane at most `batch_ceiling` of the
non-fast part - so a batch backlog can never use the part reserved for fast work.

Why hand-written Lua rather than a library: the well-kept Python limiters (`limits`: Redis fixed and
moving windows, one limit per call, INCR+EXPIRE or a sorted set; `pyrate-limiter`: Redis sorted-set
sliding logs timed by the caller's clock) check one window at a time or use the worker's clock, and
none has nested lane caps. Taking a slot must check both windows and three caps and then count them
all in one step, or two workers can each see "one left" and both take it; a Lua script is that one
step in Redis. It reads Redis's own clock (TIME), so machines with skewed clocks share the same
windows; windows are aligned on epoch seconds and minutes, as Klaviyo's are.

Keys: `<key_prefix>:rl:win:<endpoint>:w1000:<second>` and `...:w60000:<minute>`, hashes with fields
t (all lanes), n (non-fast lanes), b (batch), f (requests another integration used, learnt from
response headers); `<key_prefix>:rl:pause:<endpoint>` (after a 429, expires with it; value = end in
epoch ms); `<key_prefix>:rl:park:<endpoint>` (a throttle longer than the park cap; JSON, expires at
its end). Window keys are built inside the script, so the limiter needs a single Redis, not a cluster.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from config.lanes import LANES
from connectors.klaviyo.endpoints import ENDPOINTS, Tier

WINDOWS_MS = (1000, 60_000)
T = TypeVar("T")

# KEYS[1] window key prefix, KEYS[2] pause key.
# ARGV: lane, then per window (burst, steady): total, non-fast, batch caps.
# Returns {wait_ms, burst_window_index, steady_window_index}; wait_ms 0 = a slot was taken.
_ACQUIRE = """
local prefix = KEYS[1]
local lane = ARGV[1]
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local sizes = {1000, 60000}
local idx = {math.floor(now / 1000), math.floor(now / 60000)}
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return {pause, idx[1], idx[2]} end
local wait = 0
local keys = {}
for w = 1, 2 do
  local key = prefix .. ':w' .. sizes[w] .. ':' .. idx[w]
  keys[w] = key
  local v = redis.call('HMGET', key, 't', 'n', 'b')
  local t, n, b = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
  local base = 1 + (w - 1) * 3
  local full = t >= tonumber(ARGV[base + 1])
  if lane ~= 'fast' and n >= tonumber(ARGV[base + 2]) then full = true end
  if lane == 'batch' and b >= tonumber(ARGV[base + 3]) then full = true end
  if full then
    local left = (idx[w] + 1) * sizes[w] - now
    if left > wait then wait = left end
  end
end
if wait > 0 then return {wait, idx[1], idx[2]} end
for w = 1, 2 do
  redis.call('HINCRBY', keys[w], 't', 1)
  if lane ~= 'fast' then redis.call('HINCRBY', keys[w], 'n', 1) end
  if lane == 'batch' then redis.call('HINCRBY', keys[w], 'b', 1) end
  redis.call('PEXPIRE', keys[w], sizes[w] + 5000)
end
return {0, idx[1], idx[2]}
"""

# KEYS[1] pause key. ARGV[1] pause in ms. Never shortens a longer pause. Returns the pause's end (ms).
_PAUSE = """
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local ms = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < ms then
  redis.call('SET', KEYS[1], tostring(now + ms), 'PX', ms)
  return now + ms
end
return now + ttl
"""

# KEYS[1] window key prefix. ARGV[1] requests Klaviyo says were used in its steady window.
# Counts what exceeds our own count as used by someone else (idempotent: keeps the largest estimate).
_OBSERVE = """
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local key = KEYS[1] .. ':w60000:' .. math.floor(now / 60000)
local v = redis.call('HMGET', key, 't', 'f')
local t, f = tonumber(v[1]) or 0, tonumber(v[2]) or 0
local foreign = tonumber(ARGV[1]) - (t - f)
if foreign > f then
  redis.call('HINCRBY', key, 't', foreign - f)
  redis.call('HSET', key, 'f', foreign)
  redis.call('PEXPIRE', key, 65000)
  return foreign - f
end
return 0
"""

_SERVER_MS = """
local tm = redis.call('TIME')
return tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
"""

_FIRST_INT = re.compile(r"\d+")


@dataclass(frozen=True)
class LaneCaps:
    """What each lane may take of one window: fast up to `total`, default up to `non_fast`, batch up
    to `batch` (default and batch together never more than `non_fast`)."""

    total: int
    non_fast: int
    batch: int


@dataclass(frozen=True)
class Acquisition:
    wait: float  # 0.0: a slot was taken; else seconds until one may be free
    burst_window: int  # epoch second the attempt fell in (Redis clock)
    steady_window: int  # epoch minute the attempt fell in (Redis clock)


@dataclass(frozen=True)
class Park:
    until: float  # epoch seconds
    reason: str
    since: float


def _park_of(raw: Any) -> Park:
    data = json.loads(raw)
    return Park(float(data["until"]), str(data.get("reason", "")), float(data.get("since", 0)))


def lane_caps(klaviyo_limit: int, share: float, fast_reserve: float, batch_ceiling: float) -> LaneCaps:
    """The fleet's caps in one window of `klaviyo_limit` requests."""
    total = max(1, math.floor(klaviyo_limit * share))
    non_fast = max(1, math.floor(total * (1 - fast_reserve)))
    batch = max(1, math.floor(non_fast * batch_ceiling))
    return LaneCaps(total, non_fast, batch)


def _header(headers: Mapping[str, str], name: str) -> int | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            match = _FIRST_INT.search(str(value))
            return int(match.group()) if match else None
    return None


class FleetRateLimiter:
    """Fleet-wide fixed-window budget per Klaviyo endpoint, with a reserve for the fast lane."""

    def __init__(
        self,
        redis_client: redis.Redis,
        key_prefix: str,
        share: float = 0.8,
        fast_reserve: float = 0.25,
        batch_ceiling: float = 1.0,
        scale: float = 1.0,
        tiers: Mapping[str, Tier] | None = None,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if not 0 <= fast_reserve < 1:
            raise ValueError(f"fast_reserve must be in [0, 1), got {fast_reserve}")
        if not 0 < batch_ceiling <= 1:
            raise ValueError(f"batch_ceiling must be in (0, 1], got {batch_ceiling}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.redis = redis_client
        self.key_prefix = key_prefix
        self.share = share
        self.fast_reserve = fast_reserve
        self.batch_ceiling = batch_ceiling
        self.scale = scale
        self._tiers = {key: e.tier for key, e in ENDPOINTS.items()}
        self._tiers.update(tiers or {})
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._pause = redis_client.register_script(_PAUSE)
        self._observe = redis_client.register_script(_OBSERVE)
        self._server_ms = redis_client.register_script(_SERVER_MS)

    # --- budget -------------------------------------------------------------------------------

    def klaviyo_limits(self, endpoint: str) -> tuple[int, int]:
        """Klaviyo's (burst, steady) limits for the endpoint, times `scale`."""
        try:
            tier = self._tiers[endpoint]
        except KeyError:
            raise KeyError(f"no rate-limit tier for endpoint {endpoint!r}") from None
        return max(1, math.floor(tier.burst * self.scale)), max(1, math.floor(tier.steady * self.scale))

    def caps(self, endpoint: str) -> tuple[LaneCaps, LaneCaps]:
        """The fleet's (burst, steady) caps per lane for the endpoint."""
        burst, steady = self.klaviyo_limits(endpoint)
        args = (self.share, self.fast_reserve, self.batch_ceiling)
        return lane_caps(burst, *args), lane_caps(steady, *args)

    def _windows(self, endpoint: str) -> str:
        return f"{self.key_prefix}:rl:win:{endpoint}"

    def _pause_key(self, endpoint: str) -> str:
        return f"{self.key_prefix}:rl:pause:{endpoint}"

    def _park_key(self, endpoint: str) -> str:
        return f"{self.key_prefix}:rl:park:{endpoint}"

    def acquire(self, endpoint: str, lane: str) -> Acquisition:
        """Take one slot for `lane` if both windows allow it; says which windows it counted in."""
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}; expected one of {LANES}")
        burst, steady = self.caps(endpoint)
        args = [lane, burst.total, burst.non_fast, burst.batch, steady.total, steady.non_fast, steady.batch]
        wait_ms, burst_window, steady_window = self._acquire(
            keys=[self._windows(endpoint), self._pause_key(endpoint)], args=args
        )
        return Acquisition(int(wait_ms) / 1000.0, int(burst_window), int(steady_window))

    def try_acquire(self, endpoint: str, lane: str) -> float:
        """0.0 if a slot was taken; else seconds until one may be free (next burst or steady window,
        or the end of a fleet-wide pause)."""
        return self.acquire(endpoint, lane).wait

    # --- pause and park -------------------------------------------------------------------------

    def pause(self, endpoint: str, seconds: float) -> float:
        """Pause the endpoint for the whole fleet (after a 429). Returns the pause's end (epoch s)."""
        ms = max(1, math.ceil(seconds * 1000))
        return int(self._pause(keys=[self._pause_key(endpoint)], args=[ms])) / 1000.0

    def paused_until(self, endpoint: str) -> float | None:
        value = self.redis.get(self._pause_key(endpoint))
        return int(value) / 1000.0 if value is not None else None

    def park(self, endpoint: str, until: float, reason: str) -> None:
        """Park the endpoint's work until `until` (epoch seconds); the key expires then."""
        now = self.server_time()
        record = json.dumps({"until": until, "reason": reason, "since": now})
        ttl_ms = max(1, math.ceil((until - now) * 1000))
        self.redis.set(self._park_key(endpoint), record, px=ttl_ms)

    def parked(self, endpoint: str) -> Park | None:
        raw = self.redis.get(self._park_key(endpoint))
        return None if raw is None else _park_of(raw)

    def unpark(self, endpoint: str) -> bool:
        return bool(self.redis.delete(self._park_key(endpoint)))

    def paused_endpoints(self) -> dict[str, float]:
        """Every paused endpoint and the pause's end (epoch seconds)."""
        return self._scan(self._pause_key(""), lambda raw: int(raw) / 1000.0)

    def parked_endpoints(self) -> dict[str, Park]:
        """Every parked endpoint and its park."""
        return self._scan(self._park_key(""), _park_of)

    def _scan(self, prefix: str, parse: Callable[[Any], T]) -> dict[str, T]:
        found: dict[str, T] = {}
        for key in self.redis.scan_iter(match=prefix + "*", count=200):
            name = key.decode() if isinstance(key, bytes) else str(key)
            raw = self.redis.get(key)
            if raw is not None:
                found[name[len(prefix) :]] = parse(raw)
        return found

    def server_time(self) -> float:
        """Redis's clock (epoch seconds): the one every window, pause and park is measured by."""
        return int(self._server_ms()) / 1000.0

    # --- what Klaviyo tells us ------------------------------------------------------------------

    def observe(self, endpoint: str, headers: Mapping[str, str]) -> int:
        """Respect `RateLimit-Limit`/`RateLimit-Remaining` from a response: if Klaviyo has counted more
        requests in its steady window than the fleet made (another integration uses the account), take
        the difference from the fleet's steady window. Returns the requests newly charged."""
        remaining = _header(headers, "RateLimit-Remaining")
        if remaining is None:
            return 0
        limit = _header(headers, "RateLimit-Limit") or self.klaviyo_limits(endpoint)[1]
        used = max(0, limit - remaining)
        return int(self._observe(keys=[self._windows(endpoint)], args=[used]))

    def usage(self, endpoint: str) -> dict[str, Any]:
        """The endpoint's current windows, caps, pause and park, for status output."""
        now_ms = int(self._server_ms())
        burst_caps, steady_caps = self.caps(endpoint)
        windows: dict[str, Any] = {}
        for name, size, caps in (("burst", 1000, burst_caps), ("steady", 60_000, steady_caps)):
            raw: dict[str, str] = self.redis.hgetall(f"{self._windows(endpoint)}:w{size}:{now_ms // size}")
            counts = {k if isinstance(k, str) else k.decode(): int(v) for k, v in raw.items()}
            windows[name] = {
                "used": counts.get("t", 0),
                "non_fast": counts.get("n", 0),
                "batch": counts.get("b", 0),
                "foreign": counts.get("f", 0),
                "caps": {"total": caps.total, "non_fast": caps.non_fast, "batch": caps.batch},
                "resets_in": ((now_ms // size + 1) * size - now_ms) / 1000.0,
            }
        park = self.parked(endpoint)
        return {
            "endpoint": endpoint,
            "klaviyo_limits": dict(zip(("burst", "steady"), self.klaviyo_limits(endpoint), strict=True)),
            **windows,
            "paused_until": self.paused_until(endpoint),
            "parked": None if park is None else {"until": park.until, "reason": park.reason},
        }
