"""The fleet limiter's rules as pure functions of numbers and a clock (milliseconds): the Lua scripts of
`limiter.py` do exactly this inside Redis, and the unit tests check the rules here with a fake clock.

Three rules:
- **Caps** (`window_caps`): the fleet takes `share` of Klaviyo's window. On an endpoint the fast lane calls,
  part of that (`reserve`) is kept for fast work - but only the part fast work could still need: in the
  steady (minute) window the kept part shrinks pro rata to the time elapsed, so other lanes borrow the
  unused reserve as the minute goes by; in the burst (second) window it is kept only while the fast lane has
  work waiting (it asked for this endpoint within the last `FAST_MARK_MS`). Fast may always take the whole
  share: a fast request waits at most one burst window, as long as fast work stays within its reserve. The
  fleet's last two seconds together stay under Klaviyo's burst limit (`straddle_admits`): Klaviyo's seconds
  need not start on the fleet's.
- **Share** (`share_now`, `after_throttle`, `after_foreign`): the share starts at the floor
  (`BCSYNC_RATE_SHARE`) and grows by `SHARE_GROWTH_PER_SECOND` up to the ceiling (`BCSYNC_RATE_SHARE_MAX`)
  while Klaviyo answers without 429s; a 429 cuts it by `CUT_ON_429`; another integration seen in
  `RateLimit-Remaining` cuts it to what that integration leaves (`CUT_ON_FOREIGN` at most per cut). At most
  one cut per `CUT_SPACING_MS`: the 429s of one window, seen by many workers at once, are one signal.
- **Klaviyo's window** (`observe_window`, `klaviyo_wait_ms`, `steady_phase`): from `RateLimit-*` headers,
  when Klaviyo's minute ends, what it has left and what another integration used, whatever its phase; the
  fleet sends no more than what is left and counts its own minutes from Klaviyo's phase.
- **Line** (`line_slot`): a request refused for longer than its inline wait gets a place in the endpoint's
  line for its lane: its due time is the end of the wait or the line's tail, whichever is later, and the
  tail moves on by one request's share of the window - so waiting work comes back spread at the rate the
  budget frees, not all at the window's boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BURST_MS = 1000
STEADY_MS = 60_000
SHARE_GROWTH_PER_SECOND = 0.005  # 0.3 of the ceiling per minute: from a 0.6 share back above 0.9 in a minute
CUT_ON_429 = 0.7
CUT_ON_FOREIGN = 0.85
CUT_SPACING_MS = 1000
FAST_MARK_MS = 2000  # a fast request in the last two burst windows: fast work is waiting
FOREIGN_MIN_ELAPSED = 0.1  # judge another integration's rate only after 6 s of Klaviyo's window
FOREIGN_TOLERANCE = 0.02  # noise (requests in flight) below 2% of the limit is not another integration


@dataclass(frozen=True)
class LaneCaps:
    """What each lane may take of one window: fast up to `total`, default while the window holds fewer than
    `non_fast` requests (all lanes counted), batch up to `batch` requests of its own."""

    total: int
    non_fast: int
    batch: int


@dataclass(frozen=True)
class ShareState:
    share: float  # the share at `since_ms`
    since_ms: int  # growth counts from here
    cut_ms: int = -CUT_SPACING_MS  # the last cut


def window_caps(limit: int, share: float, reserve: float, batch_ceiling: float, kept: float) -> LaneCaps:
    """Caps in one window of Klaviyo's `limit`: `reserve` is the fast lane's part of the fleet's total (0 on an
    endpoint the fast lane never calls), `kept` the fraction of that reserve still held now (0..1)."""
    total = max(1, math.floor(limit * share))
    held = math.ceil(reserve_count(total, reserve) * kept)
    non_fast = max(1, total - held)
    return LaneCaps(total, non_fast, max(1, math.floor(non_fast * batch_ceiling)))


def kept_fraction(window_ms: int, now_ms: int, fast_waiting: bool, phase_ms: int = 0) -> float:
    """How much of the fast reserve a window still holds at `now_ms`: the steady window what is left of the
    minute (minutes starting `phase_ms` after the epoch's), the burst window all of it while fast work waits,
    none otherwise."""
    if window_ms == BURST_MS:
        return 1.0 if fast_waiting else 0.0
    return (window_ms - (now_ms - phase_ms) % window_ms) / window_ms


def steady_phase(window: KlaviyoWindow) -> int:
    """Where Klaviyo's minutes start, in whole seconds after the epoch's, from the tightest end its answers'
    `RateLimit-Reset` gave (whole seconds rounded up, so the end is late by the latency at best): the fleet
    counts its own minute windows from there, so its minute is Klaviyo's (exactly when Klaviyo's minutes start
    on a whole second) and Klaviyo's remaining never meets a fleet window straddling two of Klaviyo's."""
    return (math.floor(window.ends_ms / 1000 + 0.5) * 1000) % STEADY_MS


def admits(lane: str, caps: LaneCaps, total: int, batch: int) -> bool:
    """Whether a window holding `total` requests (`batch` of them the batch lane's) takes one more of `lane`."""
    if total >= caps.total:
        return False
    if lane != "fast" and total >= caps.non_fast:
        return False
    return not (lane == "batch" and batch >= caps.batch)


def reserve_count(total: int, reserve: float) -> int:
    """Requests of a window's `total` that are the fast lane's reserve (all of them kept at the window's start)."""
    return total - math.floor(total * (1 - reserve))


def borrow_free_ms(lane: str, total: int, reserve: float, batch_ceiling: float, taken: int, batch_taken: int,
                   start_ms: int, window_ms: int = STEADY_MS) -> int | None:
    """When the steady window lends a refused non-fast request its slot as the kept reserve shrinks (the ms its
    window must reach), or None when only the window's end frees one (the window is full, or nothing is kept)."""
    held = reserve_count(total, reserve)
    room = total - taken - 1  # the most the kept part may be for one more request of this lane
    if lane == "batch" and batch_ceiling < 1:
        room = min(room, math.floor(total - (batch_taken + 1) / batch_ceiling))
    if lane == "fast" or held == 0 or room < 0:
        return None
    return start_ms + math.ceil((1 - room / held) * window_ms)


def straddle_admits(limit: int, previous: int, current: int, held: int = 0) -> bool:
    """Whether the burst window takes one more request whatever the phase of Klaviyo's seconds: any second of
    Klaviyo's lies within two of the fleet's, so the fleet's last two seconds together stay under Klaviyo's
    limit (each alone under the fleet's share of it). A rush gets the share in one second, then the rest.
    Other lanes leave the fast lane's reserve of the pair (`held`, kept whether or not fast work waits: a
    fast request arriving after a rush must not wait for two seconds) - but never the whole pair: at a burst
    limit of 1 the other lanes would never send."""
    return previous + current < limit - max(0, min(held, limit - 1))


def share_now(state: ShareState, now_ms: int, floor: float, ceiling: float) -> float:
    """The share at `now_ms`: grown since the last cut, between floor and ceiling."""
    grown = state.share + SHARE_GROWTH_PER_SECOND * max(0, now_ms - state.since_ms) / 1000
    return max(floor, min(ceiling, grown))


def _cut(state: ShareState, now_ms: int, floor: float, ceiling: float, to: float) -> ShareState:
    if now_ms - state.cut_ms < CUT_SPACING_MS:
        return state
    current = share_now(state, now_ms, floor, ceiling)
    target = max(floor, to)
    if target >= current:
        return state
    return ShareState(target, now_ms, now_ms)


def after_throttle(state: ShareState, now_ms: int, floor: float, ceiling: float) -> ShareState:
    """Klaviyo answered 429: cut the share multiplicatively (never below the floor)."""
    return _cut(state, now_ms, floor, ceiling, share_now(state, now_ms, floor, ceiling) * CUT_ON_429)


def foreign_room(limit: int, foreign: int, elapsed: float) -> float | None:
    """The part of the ceiling another integration leaves, from the `foreign` requests it made in the
    `elapsed` part of Klaviyo's window (projected over the whole window); None: too early or too few to tell."""
    if elapsed < FOREIGN_MIN_ELAPSED or foreign <= max(1, math.ceil(limit * FOREIGN_TOLERANCE)):
        return None
    return max(0.0, 1 - foreign / min(1.0, elapsed) / limit)


def after_foreign(
    state: ShareState, now_ms: int, floor: float, ceiling: float, limit: int, foreign: int, elapsed: float
) -> ShareState:
    """`RateLimit-Remaining` says another integration uses the account: cut the share towards what it leaves,
    by `CUT_ON_FOREIGN` at most per cut (never below the floor)."""
    room = foreign_room(limit, foreign, elapsed)
    if room is None:
        return state
    current = share_now(state, now_ms, floor, ceiling)
    return _cut(state, now_ms, floor, ceiling, max(room, current * CUT_ON_FOREIGN))


def line_interval_ms(caps: LaneCaps, lane: str, window_ms: int = STEADY_MS) -> int:
    """One request's share of the window at the lane's cap: how far apart the line lets waiting work return."""
    cap = caps.total if lane == "fast" else caps.batch if lane == "batch" else caps.non_fast
    return max(1, math.ceil(window_ms / cap))


def line_slot(now_ms: int, wait_ms: int, tail_ms: int, interval_ms: int) -> tuple[int, int]:
    """(due, new tail): a refused request's turn - when the budget frees or after those already waiting."""
    due = max(now_ms + wait_ms, tail_ms)
    return due, due + interval_ms


@dataclass(frozen=True)
class KlaviyoWindow:
    """What Klaviyo's own steady window is known to hold, from `RateLimit-*` headers (its phase may differ from
    the fleet's clock): when it ends, the least remaining seen and the fleet's acquisition count then, the
    count at its first sighting minus what Klaviyo had counted (the baseline), the most foreign requests seen."""

    ends_ms: int = 0
    remaining: int = 0
    acquired_at: int = 0
    baseline: int = 0
    foreign: int = 0
    observed_ms: int = 0  # when `remaining` was seen: another integration has gone on using the window since


def observe_window(window: KlaviyoWindow, now_ms: int, acquired: int, limit: int, remaining: int,
                   reset_s: int) -> KlaviyoWindow:
    """Fold one response's headers in: requests Klaviyo counted beyond the fleet's own since its first sighting
    of the window are another integration's (independent of the window's phase)."""
    used = max(0, limit - remaining)
    if now_ms >= window.ends_ms:  # a new Klaviyo window: what it counted so far is taken as the fleet's
        return KlaviyoWindow(now_ms + max(1, reset_s) * 1000, remaining, acquired, acquired - used, 0, now_ms)
    # every answer's Reset is an upper bound of the window's end (whole seconds, rounded up): keep the tightest
    # (an answer from Klaviyo's next window, before this end, gives a later one and changes nothing)
    ends = min(window.ends_ms, now_ms + max(1, reset_s) * 1000)
    window = KlaviyoWindow(ends, window.remaining, window.acquired_at, window.baseline, window.foreign,
                           window.observed_ms)
    if remaining < window.remaining:
        window = KlaviyoWindow(window.ends_ms, remaining, acquired, window.baseline, window.foreign, now_ms)
    foreign = used - (acquired - window.baseline)
    if foreign > window.foreign:
        window = KlaviyoWindow(window.ends_ms, window.remaining, window.acquired_at, window.baseline, foreign,
                               window.observed_ms)
    return window


def foreign_drift(window: KlaviyoWindow, now_ms: int) -> int:
    """What another integration has most likely taken of Klaviyo's window since `remaining` was seen: its
    requests so far, at the pace it took them from the window's start (at least a second of it). Without this a
    fleet that shares the account spends the last of the window on requests Klaviyo refuses (429), and fast work
    finds nothing left until the window ends."""
    if window.foreign <= 0 or now_ms <= window.observed_ms:
        return 0
    return math.ceil(window.foreign * (now_ms - window.observed_ms) / _foreign_span_ms(window))


def foreign_rest(window: KlaviyoWindow, now_ms: int) -> int:
    """What another integration will most likely take of Klaviyo's window from `now_ms` to its end, at the pace
    it took its requests so far (`foreign_drift`'s pace)."""
    if window.foreign <= 0 or now_ms >= window.ends_ms:
        return 0
    return math.ceil(window.foreign * (window.ends_ms - now_ms) / _foreign_span_ms(window))


def _foreign_span_ms(window: KlaviyoWindow) -> int:
    """The time another integration took its `foreign` requests in: from the window's start until they were
    seen, at least a second (its pace is foreign / span)."""
    return max(1000, window.observed_ms - (window.ends_ms - STEADY_MS))


def klaviyo_wait_ms(window: KlaviyoWindow, now_ms: int, acquired: int, limit: int, held: int = 0,
                    start_ms: int = 0, other_lane: bool = False) -> int:
    """0, or how long a request waits for Klaviyo's window: until it ends when what it has left (less the
    fleet's requests since, and what another integration has likely taken since: `foreign_drift`) is within the
    margin for requests in flight - and, for lanes other than fast (`other_lane`; `held`: the fast reserve of
    the fleet's minute starting at `start_ms`), within that plus what another integration will likely take in
    the rest of the window (`foreign_rest`) plus the part of the reserve fast work could still need, until that
    part has shrunk enough to lend one more. Without leaving the other integration its rest, the fleet's other
    lanes spend it first, the other integration catches up with the fast reserve, and fast work waits for the
    window's end (6-7 s at p99 with the sandbox's background consumer at 30%)."""
    if now_ms >= window.ends_ms:
        return 0
    left = window.remaining - (acquired - window.acquired_at) - foreign_drift(window, now_ms)
    if other_lane:
        left -= foreign_rest(window, now_ms)
    margin = klaviyo_margin(limit)
    kept = math.ceil(held * kept_fraction(STEADY_MS, now_ms, False, start_ms % STEADY_MS)) if held else 0
    if left > margin + kept:
        return 0
    wait = window.ends_ms - now_ms
    if held and left > margin:
        free = max(now_ms + 1, start_ms + math.ceil((1 - (left - margin - 1) / held) * STEADY_MS))
        wait = min(wait, free - now_ms)
    return wait


def klaviyo_margin(limit: int) -> int:
    """Requests kept back from Klaviyo's reported remaining: those in flight when it counted."""
    return max(1, limit // 100)
