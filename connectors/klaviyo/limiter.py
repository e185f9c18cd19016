"""One Klaviyo rate budget per endpoint, shared by every worker on every machine, held in Redis.

Klaviyo counts each endpoint's requests per account in fixed windows of one second (burst) and one
minute (steady). The rules (`limiter_rules`, pure functions the unit tests check with a fake clock):
- the fleet takes an adaptive `share` of each window: it starts at `share` (the floor), grows towards
  `share_max` while Klaviyo answers without 429s, is cut on a 429 and when `RateLimit-Remaining` shows
  another integration on the account;
- the fleet's last two seconds together stay under Klaviyo's burst limit, so a Klaviyo second of any phase
  is never overrun;
- on endpoints the fast lane calls (`fast_endpoints`), a `fast_reserve` part of the share is kept for fast
  work - in the minute window only the part fast work could still need in the rest of the minute, in the
  second window only while fast work waits (a fast request on the endpoint in the last 2 s); the batch lane
  takes at most `batch_ceiling` of the non-fast part;
- Klaviyo's own steady window, whatever its phase, is never overrun: the least `RateLimit-Remaining` seen
  in it, less the fleet's requests since, must stay above a margin for requests in flight;
- a request refused for longer than its inline wait gets its place in the endpoint's line for its lane
  (its due time), so waiting work returns spread over the next windows, not all at one boundary.

Why hand-written Lua rather than a library: the well-kept Python limiters (`limits`: Redis fixed and
moving windows, one limit per call, INCR+EXPIRE or a sorted set; `pyrate-limiter`: Redis sorted-set
sliding logs timed by the caller's clock) check one window at a time or use the worker's clock, and
none has nested lane caps or an adaptive share. Taking a slot must check both windows, the caps, the share
and Klaviyo's reported remaining and then count them all in one step, or two workers can each see "one
left" and both take it; a Lua script is that one step (one round trip) in Redis. It reads Redis's own
clock (TIME), so machines with skewed clocks share the same windows.

Keys: `<key_prefix>:rl:win:<endpoint>:w1000:<second>` and `...:w60000:<minute>`, hashes with fields
t (all lanes), n (non-fast lanes), b (batch); `<key_prefix>:rl:share:<endpoint>` (hash: s share at u ms,
c last cut, a requests taken, ke/kr/ka/k0/kf what Klaviyo's steady window holds: its end, least remaining
seen, `a` then, baseline, foreign requests); `<key_prefix>:rl:fast:<endpoint>` (fast work waiting; expires
after 2 s); `<key_prefix>:rl:line:<endpoint>:<lane>` (the line's tail, ms); `<key_prefix>:rl:pause:<endpoint>`
(after a 429, expires with it; value = end in epoch ms); `<key_prefix>:rl:park:<endpoint>` (a throttle
longer than the park cap; JSON, expires at its end). Window keys are built inside the script, so the
limiter needs a single Redis, not a cluster.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from config.lanes import LANES
from connectors.klaviyo import limiter_rules as rules
from connectors.klaviyo.endpoints import ENDPOINTS, Tier
from connectors.klaviyo.limiter_rules import LaneCaps, ShareState

WINDOWS_MS = (rules.BURST_MS, rules.STEADY_MS)
SHARE_TTL_MS = 86_400_000  # an endpoint idle for a day starts again from the floor
T = TypeVar("T")

# Reads a share hash into `share` (the current share) - the same arithmetic as rules.share_now.
_SHARE = """
local function share_of(s, u, now, floor_s, ceil_s, growth)
  return math.max(floor_s, math.min(ceil_s, s + growth * math.max(0, now - u) / 1000))
end
local function num(x) return string.format('%.17g', x) end
"""

# KEYS: window prefix, pause key, share key, fast marker key, line key, park key.
# ARGV: lane, burst limit, steady limit, reserve (0: the fast lane never calls it), batch ceiling, share floor,
# share ceiling, growth per second, inline wait ms (-1: no place in line), fast mark ms, share key ttl ms.
# Returns {wait_ms, burst_window_index, steady_window_index, now_ms}; wait_ms 0 = a slot was taken. A parked
# endpoint returns {-1, 0, 0, now_ms, park record}: the park check costs no round trip of its own.
_ACQUIRE = _SHARE + """
local lane = ARGV[1]
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local parked = redis.call('GET', KEYS[6])
if parked then return {-1, 0, 0, now, parked} end
local sizes = {1000, 60000}
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3])}
local reserve, ceiling_b = tonumber(ARGV[4]), tonumber(ARGV[5])
local floor_s, ceil_s, growth = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local inline = tonumber(ARGV[9])
local h = redis.call('HMGET', KEYS[3], 's', 'u', 'a', 'ke', 'kr', 'ka', 'ph', 'kf', 'kt')
-- the minute window follows Klaviyo's phase once its RateLimit-Reset told it (rules.steady_phase)
local offsets = {0, tonumber(h[7]) or 0}
local idx = {math.floor(now / 1000), math.floor((now - offsets[2]) / 60000)}
local s, u = tonumber(h[1]), tonumber(h[2])
if not s then
  s, u = floor_s, now
  redis.call('HSET', KEYS[3], 's', num(s), 'u', u)
end
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[11]))
local share = share_of(s, u, now, floor_s, ceil_s, growth)
local acquired = tonumber(h[3]) or 0
local fast_waiting = lane == 'fast' or redis.call('EXISTS', KEYS[4]) == 1
if lane == 'fast' then redis.call('SET', KEYS[4], '1', 'PX', tonumber(ARGV[10])) end
local wait = math.max(0, redis.call('PTTL', KEYS[2]))
local keys, lane_cap, steady_kept, steady_held, steady_start = {}, 1, 0, 0, 0
for w = 1, 2 do
  local key = KEYS[1] .. ':w' .. sizes[w] .. ':' .. idx[w]
  keys[w] = key
  local total = math.max(1, math.floor(limits[w] * share))
  local kept
  if w == 1 then
    if fast_waiting then kept = 1 else kept = 0 end
  else
    kept = (sizes[w] - (now - offsets[w]) % sizes[w]) / sizes[w]
  end
  local held = total - math.floor(total * (1 - reserve))
  local non_fast = math.max(1, total - math.ceil(held * kept))
  if w == 2 then
    steady_kept, steady_held, steady_start = math.ceil(held * kept), held, idx[w] * sizes[w] + offsets[w]
  end
  local batch = math.max(1, math.floor(non_fast * ceiling_b))
  if lane == 'fast' then lane_cap = total elseif lane == 'batch' then lane_cap = batch else lane_cap = non_fast end
  local v = redis.call('HMGET', key, 't', 'b')
  local t, b = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local full = t >= total
  -- Klaviyo's second, whatever its phase, lies within the fleet's last two (rules.straddle_admits): other
  -- lanes leave fast its reserve of the pair, never the whole pair (a burst limit of 1 would stop them)
  if w == 1 then
    local pair = (tonumber(redis.call('HGET', KEYS[1] .. ':w1000:' .. (idx[1] - 1), 't')) or 0) + t
    local pair_held = math.max(0, math.min(held, limits[1] - 1))
    if pair >= limits[1] or (lane ~= 'fast' and pair >= limits[1] - pair_held) then full = true end
  end
  if lane ~= 'fast' and t >= non_fast then full = true end
  if lane == 'batch' and b >= batch then full = true end
  if full then
    local start = idx[w] * sizes[w] + offsets[w]
    local left = start + sizes[w] - now
    -- refused by the kept reserve only: it shrinks as the minute goes by (rules.borrow_free_ms)
    if w == 2 and lane ~= 'fast' and held > 0 then
      local room = total - t - 1
      if lane == 'batch' and ceiling_b < 1 then room = math.min(room, math.floor(total - (b + 1) / ceiling_b)) end
      if room >= 0 then
        -- never in the past: only a float's last bit can put it there (then it is the next ms)
        local free = math.max(now + 1, start + math.ceil((1 - room / held) * sizes[w]))
        if free - now < left then left = free - now end
      end
    end
    if left > wait then wait = left end
  end
end
-- what Klaviyo said is left of its minute, less the fleet's requests since; other lanes leave fast the part of
-- its reserve it could still need (rules.klaviyo_wait_ms)
local ke = tonumber(h[4]) or 0
if ke > now then
  -- less what another integration has likely taken since Klaviyo said so, at its pace (rules.foreign_drift)
  local kf, kt, drift = tonumber(h[8]) or 0, tonumber(h[9]) or 0, 0
  local span = math.max(1000, kt - (ke - 60000))  -- its kf requests took this long (rules._foreign_span_ms)
  if kf > 0 and now > kt then drift = math.ceil(kf * (now - kt) / span) end
  local left = tonumber(h[5]) - (acquired - tonumber(h[6])) - drift
  -- other lanes also leave what it will likely take in the rest of the window (rules.foreign_rest)
  if lane ~= 'fast' and kf > 0 then left = left - math.ceil(kf * (ke - now) / span) end
  local margin = math.max(1, math.floor(limits[2] / 100))
  local keep = margin
  if lane ~= 'fast' then keep = keep + steady_kept end
  if left <= keep then
    local until_free = ke - now
    -- refused by fast's part only: lent as the minute goes by, like the fleet's own window (rules.klaviyo_wait_ms)
    if lane ~= 'fast' and left > margin and steady_held > 0 then
      local free = math.max(now + 1, steady_start + math.ceil((1 - (left - margin - 1) / steady_held) * 60000))
      if free - now < until_free then until_free = free - now end
    end
    if until_free > wait then wait = until_free end
  end
end
if wait > 0 then
  if inline >= 0 and wait > inline then
    local interval = math.max(1, math.ceil(sizes[2] / lane_cap))
    local due = math.max(now + wait, tonumber(redis.call('GET', KEYS[5])) or 0)
    redis.call('SET', KEYS[5], due + interval, 'PX', due + interval - now + sizes[2])
    wait = due - now
  end
  return {wait, idx[1], idx[2], now}
end
for w = 1, 2 do
  redis.call('HINCRBY', keys[w], 't', 1)
  if lane ~= 'fast' then redis.call('HINCRBY', keys[w], 'n', 1) end
  if lane == 'batch' then redis.call('HINCRBY', keys[w], 'b', 1) end
  redis.call('PEXPIRE', keys[w], sizes[w] + 5000)
end
redis.call('HINCRBY', KEYS[3], 'a', 1)
return {0, idx[1], idx[2], now}
"""

# KEYS: pause key, share key. ARGV: pause ms, cut (1: a 429, cut the share), floor, ceiling, growth, factor,
# spacing ms. Never shortens a longer pause. Returns the pause's end (ms). The cut mirrors rules.after_throttle.
_PAUSE = _SHARE + """
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local ms = tonumber(ARGV[1])
if ARGV[2] == '1' then
  local h = redis.call('HMGET', KEYS[2], 's', 'u', 'c')
  local floor_s, ceil_s, growth = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local s, u = tonumber(h[1]) or floor_s, tonumber(h[2]) or now
  local c = tonumber(h[3]) or -tonumber(ARGV[7])
  if now - c >= tonumber(ARGV[7]) then
    local current = share_of(s, u, now, floor_s, ceil_s, growth)
    local target = math.max(floor_s, current * tonumber(ARGV[6]))
    if target < current then
      redis.call('HSET', KEYS[2], 's', num(target), 'u', now, 'c', now)
    end
  end
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < ms then
  redis.call('SET', KEYS[1], tostring(now + ms), 'PX', ms)
  return now + ms
end
return now + ttl
"""

# KEYS: share key. ARGV: Klaviyo's limit, remaining, reset seconds, floor, ceiling, growth, cut factor, spacing
# ms, tolerance, least elapsed part. Folds one response's RateLimit-* headers into what Klaviyo's steady window
# is known to hold (rules.observe_window) and cuts the share when another integration uses the account
# (rules.after_foreign). Returns the foreign requests seen in Klaviyo's window.
_OBSERVE = _SHARE + """
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local limit, remaining, reset = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local floor_s, ceil_s, growth = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local spacing = tonumber(ARGV[8])
local used = math.max(0, limit - remaining)
local h = redis.call('HMGET', KEYS[1], 's', 'u', 'c', 'a', 'ke', 'kr', 'ka', 'k0', 'kf', 'kt')
local acquired = tonumber(h[4]) or 0
local ke, kr, ka = tonumber(h[5]) or 0, tonumber(h[6]) or 0, tonumber(h[7]) or 0
local k0, kf, kt = tonumber(h[8]) or 0, tonumber(h[9]) or 0, tonumber(h[10]) or 0
if now >= ke then
  ke, kr, ka, k0, kf, kt = now + math.max(1, reset) * 1000, remaining, acquired, acquired - used, 0, now
else
  -- every answer's Reset is an upper bound of the window's end (whole seconds, rounded up): keep the tightest
  ke = math.min(ke, now + math.max(1, reset) * 1000)
  if remaining < kr then kr, ka, kt = remaining, acquired, now end
  local foreign = used - (acquired - k0)
  if foreign > kf then kf = foreign end
end
redis.call('HSET', KEYS[1], 'ke', ke, 'kr', kr, 'ka', ka, 'k0', k0, 'kf', kf, 'kt', kt,
           'ph', (math.floor(ke / 1000 + 0.5) * 1000) % 60000)
local s, u = tonumber(h[1]), tonumber(h[2])
if not s then
  s, u = floor_s, now
  redis.call('HSET', KEYS[1], 's', num(s), 'u', u)
end
redis.call('PEXPIRE', KEYS[1], 86400000)
local elapsed = (60 - math.min(60, math.max(0, reset))) / 60
local c = tonumber(h[3]) or -spacing
if elapsed >= tonumber(ARGV[10]) and kf > math.max(1, math.ceil(limit * tonumber(ARGV[9])))
    and now - c >= spacing then
  local current = share_of(s, u, now, floor_s, ceil_s, growth)
  local room = math.max(0, 1 - kf / math.min(1, elapsed) / limit)
  local target = math.max(floor_s, math.max(room, current * tonumber(ARGV[7])))
  if target < current then
    redis.call('HSET', KEYS[1], 's', num(target), 'u', now, 'c', now)
  end
end
return kf
"""

_SERVER_MS = """
local tm = redis.call('TIME')
return tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
"""

_FIRST_INT = re.compile(r"\d+")


@dataclass(frozen=True)
class Acquisition:
    wait: float  # 0.0: a slot was taken; else seconds until one may be free
    burst_window: int  # epoch second the attempt fell in (Redis clock)
    steady_window: int  # minute the attempt fell in (Redis clock; counted from Klaviyo's phase once known)
    at: float = 0.0  # when the attempt was judged (Redis clock, epoch seconds): `at + wait` is its turn
    park: Park | None = None  # the endpoint is parked: no slot, `wait` runs to the park's end


@dataclass(frozen=True)
class Park:
    until: float  # epoch seconds
    reason: str
    since: float


def _park_of(raw: Any) -> Park:
    data = json.loads(raw)
    return Park(float(data["until"]), str(data.get("reason", "")), float(data.get("since", 0)))


def lane_caps(klaviyo_limit: int, share: float, fast_reserve: float, batch_ceiling: float) -> LaneCaps:
    """The fleet's caps in one window of `klaviyo_limit` requests with the whole fast reserve held (the start
    of a minute, or fast work waiting): what non-fast lanes are sure of."""
    return rules.window_caps(klaviyo_limit, share, fast_reserve, batch_ceiling, 1.0)


def _header(headers: Mapping[str, str], name: str) -> int | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            match = _FIRST_INT.search(str(value))
            return int(match.group()) if match else None
    return None


class FleetRateLimiter:
    """Fleet-wide fixed-window budget per Klaviyo endpoint: an adaptive share, a work-conserving fast reserve,
    Klaviyo's reported remaining respected, and a line for what must wait."""

    def __init__(
        self,
        redis_client: redis.Redis,
        key_prefix: str,
        share: float = 0.8,
        fast_reserve: float = 0.25,
        batch_ceiling: float = 1.0,
        scale: float = 1.0,
        tiers: Mapping[str, Tier] | None = None,
        share_max: float = 1.0,
        fast_endpoints: Collection[str] | None = None,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if not share <= share_max <= 1:
            raise ValueError(f"share_max must be in [share, 1] = [{share}, 1], got {share_max}")
        if not 0 <= fast_reserve < 1:
            raise ValueError(f"fast_reserve must be in [0, 1), got {fast_reserve}")
        if not 0 < batch_ceiling <= 1:
            raise ValueError(f"batch_ceiling must be in (0, 1], got {batch_ceiling}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.redis = redis_client
        self.key_prefix = key_prefix
        self.share = share
        self.share_max = share_max
        self.fast_reserve = fast_reserve
        self.batch_ceiling = batch_ceiling
        self.scale = scale
        self._tiers = {key: e.tier for key, e in ENDPOINTS.items()}
        self._tiers.update(tiers or {})
        # None: every endpoint holds the reserve (safe when the caller does not know what the fast lane calls)
        self.fast_endpoints = None if fast_endpoints is None else frozenset(fast_endpoints)
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

    def reserve(self, endpoint: str) -> float:
        """The fast lane's part of the endpoint's share: 0 where the fast lane never calls it."""
        if self.fast_endpoints is not None and endpoint not in self.fast_endpoints:
            return 0.0
        return self.fast_reserve

    def share_state(self, endpoint: str) -> ShareState | None:
        share, since, cut = self.redis.hmget(self._share_key(endpoint), ["s", "u", "c"])
        if share is None or since is None:
            return None
        return ShareState(float(share), int(float(since)), -rules.CUT_SPACING_MS if cut is None else int(float(cut)))

    def current_share(self, endpoint: str, now_ms: int | None = None) -> float:
        """The fleet's share of the endpoint's windows now (the floor until the endpoint is first used)."""
        state = self.share_state(endpoint)
        if state is None:
            return self.share
        now = int(self._server_ms()) if now_ms is None else now_ms
        return rules.share_now(state, now, self.share, self.share_max)

    def caps(self, endpoint: str) -> tuple[LaneCaps, LaneCaps]:
        """The fleet's (burst, steady) caps per lane for the endpoint at its current share, with the whole fast
        reserve held: what each lane is sure of (borrowing may give non-fast lanes more)."""
        burst, steady = self.klaviyo_limits(endpoint)
        share = self.current_share(endpoint)
        args = (share, self.reserve(endpoint), self.batch_ceiling, 1.0)
        return rules.window_caps(burst, *args), rules.window_caps(steady, *args)

    def _windows(self, endpoint: str) -> str:
        return f"{self.key_prefix}:rl:win:{endpoint}"

    def _pause_key(self, endpoint: str) -> str:
        return f"{self.key_prefix}:rl:pause:{endpoint}"

    def _park_key(self, endpoint: str) -> str:
        return f"{self.key_prefix}:rl:park:{endpoint}"

    def _share_key(self, endpoint: str) -> str:
        return f"{self.key_prefix}:rl:share:{endpoint}"

    def _fast_key(self, endpoint: str) -> str:
        return f"{self.key_prefix}:rl:fast:{endpoint}"

    def _line_key(self, endpoint: str, lane: str) -> str:
        return f"{self.key_prefix}:rl:line:{endpoint}:{lane}"

    def _share_args(self) -> list[float]:
        return [self.share, self.share_max, rules.SHARE_GROWTH_PER_SECOND]

    def acquire(self, endpoint: str, lane: str, inline_wait: float | None = None) -> Acquisition:
        """Take one slot for `lane` if both windows allow it; says which windows it counted in. A refusal longer
        than `inline_wait` (seconds; None: never) takes a place in the endpoint's line for the lane: its wait
        is then until its turn."""
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}; expected one of {LANES}")
        burst, steady = self.klaviyo_limits(endpoint)
        inline_ms = -1 if inline_wait is None else max(0, math.floor(inline_wait * 1000))
        args = [lane, burst, steady, self.reserve(endpoint), self.batch_ceiling, *self._share_args(), inline_ms,
                rules.FAST_MARK_MS, SHARE_TTL_MS]
        keys = [self._windows(endpoint), self._pause_key(endpoint), self._share_key(endpoint),
                self._fast_key(endpoint), self._line_key(endpoint, lane), self._park_key(endpoint)]
        wait_ms, burst_window, steady_window, now_ms, *parked = self._acquire(keys=keys, args=args)
        now = int(now_ms) / 1000.0
        if parked:
            park = _park_of(parked[0])
            return Acquisition(max(0.001, park.until - now), 0, 0, now, park)
        return Acquisition(int(wait_ms) / 1000.0, int(burst_window), int(steady_window), now)

    def try_acquire(self, endpoint: str, lane: str, inline_wait: float | None = None) -> float:
        """0.0 if a slot was taken; else seconds until one may be free (next burst or steady window, the end of
        a fleet-wide pause, a park or Klaviyo's window, or the request's turn in line)."""
        return self.acquire(endpoint, lane, inline_wait).wait

    # --- pause and park -------------------------------------------------------------------------

    def pause(self, endpoint: str, seconds: float, throttled: bool = False) -> float:
        """Pause the endpoint for the whole fleet; `throttled` (Klaviyo answered 429) also cuts the share.
        Returns the pause's end (epoch s)."""
        ms = max(1, math.ceil(seconds * 1000))
        args = [ms, 1 if throttled else 0, *self._share_args(), rules.CUT_ON_429, rules.CUT_SPACING_MS]
        return int(self._pause(keys=[self._pause_key(endpoint), self._share_key(endpoint)], args=args)) / 1000.0
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
        """Respect `RateLimit-Limit`/`-Remaining`/`-Reset` from a response: what is left in Klaviyo's steady
        window (whatever its phase) bounds the fleet until it ends, and requests Klaviyo counted beyond the
        fleet's own are another integration's, which cuts the share. Returns those foreign requests."""
        remaining = _header(headers, "RateLimit-Remaining")
        if remaining is None:
            return 0
        limit = _header(headers, "RateLimit-Limit") or self.klaviyo_limits(endpoint)[1]
        reset = _header(headers, "RateLimit-Reset")
        args = [limit, remaining, 60 if reset is None else min(60, reset), *self._share_args(),
                rules.CUT_ON_FOREIGN, rules.CUT_SPACING_MS, rules.FOREIGN_TOLERANCE, rules.FOREIGN_MIN_ELAPSED]
        return int(self._observe(keys=[self._share_key(endpoint)], args=args))

    def usage(self, endpoint: str) -> dict[str, Any]:
        """The endpoint's current windows, caps, share, what Klaviyo reported, pause and park, for status."""
        now_ms = int(self._server_ms())
        burst_caps, steady_caps = self.caps(endpoint)
        state = {(k if isinstance(k, str) else k.decode()): float(v)
                 for k, v in self.redis.hgetall(self._share_key(endpoint)).items()}
        phase = int(state.get("ph", 0))
        windows: dict[str, Any] = {}
        for name, size, offset, caps in (("burst", 1000, 0, burst_caps), ("steady", 60_000, phase, steady_caps)):
            index = (now_ms - offset) // size
            raw: dict[str, str] = self.redis.hgetall(f"{self._windows(endpoint)}:w{size}:{index}")
            counts = {k if isinstance(k, str) else k.decode(): int(v) for k, v in raw.items()}
            windows[name] = {
                "used": counts.get("t", 0),
                "non_fast": counts.get("n", 0),
                "batch": counts.get("b", 0),
                "caps": {"total": caps.total, "non_fast": caps.non_fast, "batch": caps.batch},
                "resets_in": ((index + 1) * size + offset - now_ms) / 1000.0,
            }
        known = state.get("ke", 0) > now_ms
        park = self.parked(endpoint)
        return {
            "endpoint": endpoint,
            "klaviyo_limits": dict(zip(("burst", "steady"), self.klaviyo_limits(endpoint), strict=True)),
            **windows,
            "share": round(self.current_share(endpoint, now_ms), 4),
            "fast_reserve": self.reserve(endpoint),
            "klaviyo_window": {
                "ends_in": (state["ke"] - now_ms) / 1000.0,
                "remaining": int(state["kr"] - (state.get("a", 0) - state["ka"])),
                "foreign": int(state.get("kf", 0)),
            } if known else None,
            "paused_until": self.paused_until(endpoint),
            "parked": None if park is None else {"until": park.until, "reason": park.reason},
        }
