"""The limiter's rules with a fake clock (milliseconds): reserve borrowing, the adaptive share, the line, and
Klaviyo's own window seen through its headers. Pure functions; the Lua of `limiter.py` mirrors them
(tests/unit/connectors/klaviyo/test_limiter.py checks that on Redis)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from connectors.klaviyo import limiter_rules as rules
from connectors.klaviyo.limiter_rules import KlaviyoWindow, LaneCaps, ShareState

MINUTE = 60_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE  # a minute boundary on the fake clock


def steady_caps(limit: int, now: int, reserve: float = 0.25, share: float = 0.8) -> LaneCaps:
    return rules.window_caps(limit, share, reserve, 1.0, rules.kept_fraction(MINUTE, now, fast_waiting=False))


def test_other_lanes_borrow_the_fast_reserve_pro_rata_to_the_minute() -> None:
    # events (XL, 3,500/min) at share 0.8: 2,800 for the fleet, 700 of them fast's at the minute's start
    assert steady_caps(3500, T0) == LaneCaps(2800, 2100, 2100)
    assert steady_caps(3500, T0 + 15_000).non_fast == 2800 - 525  # a quarter gone: 3/4 of the reserve kept
    assert steady_caps(3500, T0 + 30_000).non_fast == 2800 - 350
    assert steady_caps(3500, T0 + 59_999).non_fast == 2800 - 1  # what fast could need in the last ms
    # whatever fast already took is counted in the window: it still finds what it could need for the rest
    for elapsed in range(0, MINUTE, 7_500):
        caps = steady_caps(3500, T0 + elapsed)
        assert caps.total - caps.non_fast == pytest.approx(700 * (MINUTE - elapsed) / MINUTE, abs=1)


def test_no_reserve_where_the_fast_lane_never_calls() -> None:
    assert steady_caps(150, T0, reserve=0.0) == LaneCaps(120, 120, 120)
    assert rules.window_caps(10, 0.8, 0.0, 1.0, 1.0) == LaneCaps(8, 8, 8)


def test_burst_reserve_only_while_fast_work_waits() -> None:
    idle = rules.window_caps(350, 0.8, 0.25, 1.0, rules.kept_fraction(rules.BURST_MS, T0 + 10, False))
    waiting = rules.window_caps(350, 0.8, 0.25, 1.0, rules.kept_fraction(rules.BURST_MS, T0 + 10, True))
    assert idle == LaneCaps(280, 280, 280)
    assert waiting == LaneCaps(280, 210, 210)


def test_small_tiers_keep_the_old_arithmetic_with_the_whole_reserve() -> None:
    assert rules.window_caps(75, 0.8, 0.25, 1.0, 1.0) == LaneCaps(60, 45, 45)
    assert rules.window_caps(750, 0.8, 0.25, 0.5, 1.0) == LaneCaps(600, 450, 225)
    assert rules.window_caps(1, 0.8, 0.25, 1.0, 1.0) == LaneCaps(1, 1, 1)
    assert rules.window_caps(3, 0.8, 0.25, 1.0, 1.0) == LaneCaps(2, 1, 1)


def test_klaviyo_seconds_of_any_phase_never_overrun() -> None:
    """A hungry fleet taking what the burst rules allow, its requests anywhere inside its seconds (the worst
    placement: late in one second, early in the next): no second of Klaviyo's, whatever its phase, sees more
    than Klaviyo's limit - while each fleet second alone may take the whole share after a quiet one."""
    limit, caps = 35, rules.window_caps(35, 1.0, 0.25, 1.0, 0.0)  # share grown to 1.0: 35 a second
    per_second: list[int] = []
    for second in range(20):
        previous = per_second[-1] if per_second else 0
        current = 0
        quiet = second in (7, 8, 13)  # no work: the next second may rush
        while not quiet and rules.admits("default", caps, current, 0) and rules.straddle_admits(
                limit, previous, current):
            current += 1
        per_second.append(current)
    assert per_second[9] == 35  # after a quiet second, the whole share at once
    assert sum(per_second) <= 20 * limit
    # any Klaviyo second lies within two consecutive fleet seconds: at worst it holds both whole
    assert all(a + b <= limit for a, b in zip(per_second, per_second[1:], strict=False))
    assert max(per_second) == 35 and per_second[10] == 0  # a rush: the share at once, then what is left
    # other lanes leave fast its reserve of every pair: fast work arriving after a rush finds it at once
    held = rules.reserve_count(35, 0.25)
    assert held == 9
    assert not rules.straddle_admits(limit, 26, 0, held) and rules.straddle_admits(limit, 26, 8)
    assert rules.straddle_admits(limit, 0, 25, held) and not rules.straddle_admits(limit, 0, 26, held)


def test_admits_per_lane() -> None:
    caps = LaneCaps(16, 12, 6)
    assert rules.admits("batch", caps, total=5, batch=5)
    assert not rules.admits("batch", caps, total=6, batch=6)
    assert rules.admits("default", caps, total=11, batch=6)
    assert not rules.admits("default", caps, total=12, batch=0)
    assert rules.admits("fast", caps, total=15, batch=6)
    assert not rules.admits("fast", caps, total=16, batch=0)


def test_fast_work_waits_at_most_one_burst_window_within_its_reserve() -> None:
    """Non-fast lanes filling every window as the rules allow never leave fast work, arriving at its reserve's
    pace, without a slot for longer than the rest of one second."""
    limit_s, limit_m = 10, 150  # M tier: 8/s and 120/min for the fleet, fast's reserve 2/s and 30/min
    minute_total = 0
    fast_taken = 0
    for second in range(60):
        now = T0 + second * 1000
        steady = rules.window_caps(limit_m, 0.8, 0.25, 1.0, rules.kept_fraction(MINUTE, now, True))
        burst = rules.window_caps(limit_s, 0.8, 0.25, 1.0, 1.0)  # fast waits: the burst reserve is held
        in_second = 0
        while rules.admits("default", steady, minute_total, 0) and rules.admits("default", burst, in_second, 0):
            minute_total += 1
            in_second += 1
        if second % 2 == 0:  # fast work at its reserve's pace: 30 per minute
            assert rules.admits("fast", steady, minute_total, 0) and rules.admits("fast", burst, in_second, 0)
            minute_total += 1
            fast_taken += 1
    assert fast_taken == 30 and minute_total <= 120


def test_a_refusal_by_the_kept_reserve_is_told_when_it_shrinks() -> None:
    # M tier at share 0.8: 120 a minute, 30 of them fast's at its start; non-fast lanes took their 90
    free = rules.borrow_free_ms("default", 120, 0.25, 1.0, taken=90, batch_taken=0, start_ms=T0)
    assert free == T0 + 2000  # 1/30 of the minute later the kept part is 29: one more may go
    kept = rules.kept_fraction(MINUTE, T0 + 2000, False)
    assert rules.admits("default", rules.window_caps(150, 0.8, 0.25, 1.0, kept), 90, 0)
    kept = rules.kept_fraction(MINUTE, T0 + 1999, False)
    assert not rules.admits("default", rules.window_caps(150, 0.8, 0.25, 1.0, kept), 90, 0)
    # 110 taken (fast's too): the 111th is lent once the kept part is down to 9 of 30, 7/10 through the minute
    assert rules.borrow_free_ms("default", 120, 0.25, 1.0, 110, 0, T0) == T0 + 42_000
    # a full window, the fast lane, or nothing kept: only the window's end
    assert rules.borrow_free_ms("default", 120, 0.25, 1.0, 120, 0, T0) is None
    assert rules.borrow_free_ms("fast", 120, 0.25, 1.0, 119, 0, T0) is None
    assert rules.borrow_free_ms("batch", 120, 0.0, 1.0, 100, 100, T0) is None
    # the batch lane under a ceiling of half: its own cap grows with the lent part too
    assert rules.borrow_free_ms("batch", 120, 0.25, 0.5, 45, 45, T0) == T0 + math.ceil((1 - 28 / 30) * MINUTE)


def test_share_grows_from_the_floor_to_the_ceiling() -> None:
    state = ShareState(0.5, T0)
    assert rules.share_now(state, T0, 0.5, 1.0) == 0.5
    assert rules.share_now(state, T0 + 20_000, 0.5, 1.0) == pytest.approx(0.6)
    assert rules.share_now(state, T0 + 60_000, 0.5, 1.0) == pytest.approx(0.8)
    assert rules.share_now(state, T0 + 3_600_000, 0.5, 1.0) == 1.0
    assert rules.share_now(state, T0 + 3_600_000, 0.5, 0.9) == 0.9  # BCSYNC_RATE_SHARE_MAX


def test_a_429_cuts_the_share_multiplicatively_never_below_the_floor() -> None:
    state = ShareState(1.0, T0)
    cut = rules.after_throttle(state, T0 + 5000, 0.4, 1.0)
    assert cut == ShareState(0.7, T0 + 5000, T0 + 5000)
    # the other workers' 429s of the same moment are the same signal: no second cut within the spacing
    assert rules.after_throttle(cut, T0 + 5500, 0.4, 1.0) == cut
    again = rules.after_throttle(cut, T0 + 6000, 0.4, 1.0)
    assert again.share == pytest.approx(0.705 * 0.7)  # grown for a second, then cut
    floor = rules.after_throttle(again, T0 + 7000, 0.4, 1.0)
    assert floor.share == 0.4
    assert rules.after_throttle(floor, T0 + 8000, 0.4, 1.0).share == 0.4  # never below the floor


def test_another_integration_cuts_the_share_to_what_it_leaves() -> None:
    state = ShareState(1.0, T0)
    # 3,500/min: 525 foreign requests half way through Klaviyo's window -> it takes 30% -> room 0.7
    assert rules.foreign_room(3500, 525, 0.5) == pytest.approx(0.7)
    first = rules.after_foreign(state, T0, 0.5, 1.0, 3500, 525, 0.5)
    assert first.share == pytest.approx(0.85)  # at most CUT_ON_FOREIGN per cut
    second = rules.after_foreign(first, T0 + 1000, 0.5, 1.0, 3500, 525, 0.5)
    third = rules.after_foreign(second, T0 + 2000, 0.5, 1.0, 3500, 525, 0.5)
    assert third.share == pytest.approx(0.7)  # settles at what the other integration leaves, not lower
    # grown past the room since: cut back to it
    assert rules.after_foreign(third, T0 + 3000, 0.5, 1.0, 3500, 525, 0.5).share == pytest.approx(0.7)
    # below the floor never; too early in the window or too few requests to tell: no cut
    assert rules.after_foreign(ShareState(0.85, T0), T0, 0.8, 1.0, 3500, 2000, 0.6).share == 0.8
    assert rules.after_foreign(state, T0, 0.5, 1.0, 3500, 300, 0.05) == state
    assert rules.after_foreign(state, T0, 0.5, 1.0, 3500, 70, 0.5) == state  # 2%: requests in flight


def test_the_share_climbs_back_when_the_other_integration_stops() -> None:
    settled = ShareState(0.65, T0, T0)
    assert rules.share_now(settled, T0 + 120_000, 0.5, 1.0) >= 0.9


def test_waiting_work_is_spread_by_its_place_in_line() -> None:
    interval = rules.line_interval_ms(LaneCaps(2800, 2100, 2100), "default")
    assert interval == 29  # 60 s / 2,100
    tail = 0
    dues = []
    for _ in range(5):  # five refusals at the same moment, 20 s before the minute ends
        due, tail = rules.line_slot(T0 + 40_000, 20_000, tail, interval)
        dues.append(due)
    assert dues == [T0 + MINUTE + k * interval for k in range(5)]
    # a line whose tail is past starts again at the end of the wait
    assert rules.line_slot(T0 + 200_000, 500, tail, interval) == (T0 + 200_500, T0 + 200_500 + interval)
    assert rules.line_interval_ms(LaneCaps(8, 6, 3), "batch") == 20_000
    assert rules.line_interval_ms(LaneCaps(8, 6, 3), "fast") == 7500


def test_klaviyo_window_seen_through_headers_whatever_its_phase() -> None:
    window = KlaviyoWindow()
    # first response in Klaviyo's window (it resets in 40 s): 100 counted, all taken as the fleet's
    window = rules.observe_window(window, T0 + 1000, acquired=500, limit=750, remaining=650, reset_s=40)
    assert window == KlaviyoWindow(T0 + 41_000, 650, 500, 400, 0, T0 + 1000)
    # the fleet took 50 more, Klaviyo counted 80 more: 30 were someone else's
    window = rules.observe_window(window, T0 + 5000, acquired=550, limit=750, remaining=570, reset_s=36)
    assert window.foreign == 30 and window.remaining == 570 and window.acquired_at == 550
    assert window.ends_ms == T0 + 41_000  # 5 s + 36 s: the same end
    # a later answer's Reset tightens the end (the first was rounded up by up to a second)
    window = rules.observe_window(window, T0 + 5600, acquired=550, limit=750, remaining=570, reset_s=35)
    assert window.ends_ms == T0 + 40_600
    # an older answer arriving late changes nothing
    assert rules.observe_window(window, T0 + 5100, acquired=560, limit=750, remaining=600, reset_s=36) == window
    # what is left bounds the fleet until Klaviyo's window ends, minus a margin for requests in flight
    assert rules.klaviyo_wait_ms(window, T0 + 6000, acquired=1000, limit=750) == 0
    assert rules.klaviyo_wait_ms(window, T0 + 6000, acquired=550 + 570 - 7, limit=750) == 34_600
    assert rules.klaviyo_wait_ms(window, T0 + 40_600, acquired=5000, limit=750) == 0  # it ended
    # the 30 foreign requests took 24.4 s of Klaviyo's window (it started at T0 - 19.4 s): 1 s after 570 was seen,
    # another 2 of them are likely gone too
    assert rules.foreign_drift(window, T0 + 6000) == 2
    # other lanes also leave what fast work could still need of the minute (the fleet's minute from T0: 20 of
    # it fast's, 18 still kept 6 s in), and are told when enough of it is lent: with 18 left, at 30 s
    assert rules.klaviyo_wait_ms(window, T0 + 6000, acquired=550 + 570 - 20, limit=750) == 0
    assert rules.klaviyo_wait_ms(window, T0 + 6000, acquired=550 + 570 - 20, limit=750, held=20, start_ms=T0) \
        == 24_000
    # with 90 of fast's kept, only the window's end (34.6 s) comes first
    assert rules.klaviyo_wait_ms(window, T0 + 6000, acquired=550 + 570 - 20, limit=750, held=90, start_ms=T0) \
        == 34_600
    assert rules.klaviyo_wait_ms(window, T0 + 6000, acquired=550 + 570 - 90, limit=750, held=20, start_ms=T0) == 0
    fresh = rules.observe_window(window, T0 + 41_500, acquired=1200, limit=750, remaining=749, reset_s=60)
    assert fresh.foreign == 0 and fresh.ends_ms == T0 + 101_500
    # an answer from Klaviyo's next window that arrives before the end known changes nothing but the count
    early = rules.observe_window(window, T0 + 40_500, acquired=1200, limit=750, remaining=749, reset_s=60)
    assert early.ends_ms == T0 + 40_600 and early.foreign == window.foreign


def test_the_fleet_minute_follows_klaviyos_phase() -> None:
    window = rules.observe_window(KlaviyoWindow(), T0 + 1000, acquired=0, limit=750, remaining=700, reset_s=17)
    phase = rules.steady_phase(window)
    assert phase == 18_000  # Klaviyo's minutes start 18 s after the epoch's (within the header's 1 s)
    # later answers tighten the end to the latency; the phase is whole seconds
    window = rules.observe_window(window, T0 + 1_996, acquired=1, limit=750, remaining=699, reset_s=16)
    assert window.ends_ms == T0 + 17_996 and rules.steady_phase(window) == 18_000
    assert rules.kept_fraction(MINUTE, T0 + 18_000, False, phase) == 1.0  # its minute's start: all kept
    assert rules.kept_fraction(MINUTE, T0 + 48_000, False, phase) == 0.5
    assert rules.kept_fraction(MINUTE, T0 + 17_999, False, phase) == pytest.approx(1 / MINUTE)


def test_a_burst_limit_of_one_still_lets_other_lanes_send() -> None:
    """Klaviyo's smallest tiers (and the sandbox at small scales) allow 1 request a second: the fast lane's
    reserve of the two-second pair may not be the whole pair, or other lanes would never send."""
    held = rules.reserve_count(1, 0.25)
    assert rules.straddle_admits(1, 0, 0, held)
    assert not rules.straddle_admits(1, 1, 0, held) and not rules.straddle_admits(1, 0, 1, held)


def test_another_integrations_pace_is_taken_off_what_klaviyo_said_is_left() -> None:
    """Klaviyo's Remaining is a snapshot: an integration sharing the account goes on using the window after it.
    A fleet that spent the snapshot to its margin got 429s (2 per 1,000 requests with the sandbox's background
    consumer at 30%) and left fast work nothing until the window's end."""
    start = T0
    window = rules.observe_window(KlaviyoWindow(), start + 1000, acquired=0, limit=600, remaining=590, reset_s=59)
    # 30 s in: the fleet took 200, Klaviyo counted 290 in all - 80 of them someone else's (the first 10 were
    # taken as the fleet's), at 80 in 30 s
    window = rules.observe_window(window, start + 30_000, acquired=200, limit=600, remaining=310, reset_s=30)
    assert window.foreign == 80 and window.observed_ms == start + 30_000
    assert rules.foreign_drift(window, start + 30_000) == 0
    assert rules.foreign_drift(window, start + 40_000) == 27  # 10 s at that pace
    # 10 s later: the snapshot says 310 - 276 = 34 left, 27 of them likely gone: 7, over the margin of 6
    assert rules.klaviyo_wait_ms(window, start + 40_000, acquired=200 + 276, limit=600) == 0
    # one more and the fleet waits for the window's end (before, it went on for 27 more, which Klaviyo refused)
    assert rules.klaviyo_wait_ms(window, start + 40_000, acquired=200 + 277, limit=600) == 20_000
    assert rules.klaviyo_wait_ms(replace(window, foreign=0), start + 40_000, acquired=200 + 277, limit=600) == 0
    # without the other integration nothing is taken off
    alone = rules.observe_window(KlaviyoWindow(), start + 1000, acquired=0, limit=600, remaining=590, reset_s=59)
    assert rules.foreign_drift(alone, start + 40_000) == 0


def test_other_lanes_leave_another_integration_what_it_will_take_in_the_rest_of_the_window() -> None:
    """Fast work never waits for the window's end because another integration caught up with what other lanes
    spent first: they also leave it the rest of the window at its pace (the sandbox's background consumer at
    30% made fast work wait 6-7 s at p99)."""
    start = T0
    window = rules.observe_window(KlaviyoWindow(), start + 1000, acquired=0, limit=600, remaining=590, reset_s=59)
    window = rules.observe_window(window, start + 30_000, acquired=200, limit=600, remaining=310, reset_s=30)
    # 80 in its first 30 s: 54 more likely in the last 20 s, 27 of them in the next 10 s
    assert rules.foreign_rest(window, start + 40_000) == 54 and rules.foreign_rest(window, start + 60_000) == 0
    # 310 - 200 - 27 = 83 left by the snapshot: fast work may take it down to the margin of 6
    assert rules.klaviyo_wait_ms(window, start + 40_000, acquired=400 + 76, limit=600) == 0
    # other lanes stop 54 earlier
    assert rules.klaviyo_wait_ms(window, start + 40_000, acquired=400 + 22, limit=600, other_lane=True) == 0
    assert rules.klaviyo_wait_ms(window, start + 40_000, acquired=400 + 23, limit=600, other_lane=True) == 20_000
    alone = rules.observe_window(KlaviyoWindow(), start + 1000, acquired=0, limit=600, remaining=590, reset_s=59)
    assert rules.foreign_rest(alone, start + 40_000) == 0
