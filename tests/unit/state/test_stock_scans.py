"""Stock scans on real Redis: a SKU's figure is held while rows of it are on their way, released exactly when
the last one is stored (or the scan is closed after it was), whatever the interleaving."""

from __future__ import annotations

import random
import threading

import redis

from state.stock_scans import ExpectedRow, StockScans
from sync.catalog.records import SkuKey

X = SkuKey("S100", "BLK", "", "", "M").text
Y = SkuKey("S100", "BLK", "", "", "L").text
SOURCE = "poll:inventory"


def row(sku: str, warehouse: str) -> ExpectedRow:
    return ExpectedRow(f"{sku}@{warehouse}#1", sku, warehouse)


def swept(scans: StockScans, scan: str, count: int = 500) -> set[str]:
    """A whole sweep, as `bcsync.stock.release_scan` runs it: step by step, then finish."""
    released: set[str] = set()
    cursor = 0
    while True:
        cursor, skus = scans.release_step(scan, cursor, count)
        released |= set(skus)
        if cursor == 0:
            scans.finish(scan)
            return released


def test_a_sku_is_held_until_its_last_row_is_stored_after_the_close(redis_client: redis.Redis) -> None:
    scans = StockScans(redis_client, "t")
    scan = scans.new_id()
    assert scans.expect(scan, SOURCE, [row(X, "WH1"), row(X, "WH2"), row(Y, "WH1")]) == 3
    assert scans.settle([(scan, row(X, "WH1").entry)], [X]) == [], "open: a later page may bring more of X"
    scans.expect(scan, SOURCE, [row(X, "WH3")])  # the next page
    assert scans.settle([(scan, row(Y, "WH1").entry)], [Y]) == []
    assert scans.held()[0] == 2
    assert scans.close_source(SOURCE) == [scan]
    assert swept(scans, scan) == {Y}, "Y was complete at the close; X still misses two rows"
    assert scans.complete_with([(scan, row(X, "WH2").entry)], [X]) == set()
    assert scans.settle([(scan, row(X, "WH2").entry)], [X]) == []
    assert scans.complete_with([(scan, row(X, "WH3").entry)], [X]) == {X}, "asked before: the last row completes X"
    assert scans.held()[0] == 1, "asking changes nothing"
    assert scans.settle([(scan, row(X, "WH3").entry)], [X]) == [X], "the last row releases X"
    assert scans.held() == (0, None)
    assert scans.live() == 0
    assert not redis_client.keys(f"{scans.scan_prefix}*"), "a swept, complete scan leaves nothing behind"


def test_a_sku_computed_by_its_last_row_is_not_computed_again_by_the_sweep(redis_client: redis.Redis) -> None:
    scans = StockScans(redis_client, "t")
    scan = scans.new_id()
    scans.expect(scan, SOURCE, [row(X, "WH1"), row(Y, "WH1")])
    scans.close_source(SOURCE)  # a one-page cycle closes before its rows reach a worker
    assert scans.settle([(scan, row(X, "WH1").entry)], [X]) == [X]
    assert swept(scans, scan) == set(), "Y is still on its way, X was computed by its row"
    assert scans.settle([(scan, row(Y, "WH1").entry)], [Y]) == [Y]
    assert scans.live() == 0 and not redis_client.keys(f"{scans.scan_prefix}*")


def test_a_redelivered_row_counts_once(redis_client: redis.Redis) -> None:
    scans = StockScans(redis_client, "t")
    scan = scans.new_id()
    scans.expect(scan, SOURCE, [row(X, "WH1"), row(X, "WH2")])
    scans.close_source(SOURCE)
    assert swept(scans, scan) == set()
    assert scans.settle([(scan, row(X, "WH1").entry)], [X]) == []
    assert scans.settle([(scan, row(X, "WH1").entry)], [X]) == [], "the same row again: WH2 is still missing"
    assert scans.settle([(scan, row(X, "WH2").entry)], [X]) == [X]
    assert scans.settle([(scan, row(X, "WH2").entry)], [X]) == [X], "after: unknown scan, nothing to wait for"


def test_rows_of_no_scan_or_of_an_unknown_scan_are_complete_unless_a_live_scan_holds_the_sku(
    redis_client: redis.Redis,
) -> None:
    scans = StockScans(redis_client, "t")
    assert scans.settle([], [X]) == [X]
    assert scans.settle([("lost-with-redis", "k#1")], [X]) == [X]
    scan = scans.new_id()
    scans.expect(scan, SOURCE, [row(X, "WH2")])
    assert scans.complete_with([("lost-with-redis", "k#1")], [X, Y]) == {Y}
    assert scans.settle([("lost-with-redis", "k#1")], [X, Y]) == [Y], "X has a row of a live scan on its way"
    assert scans.holding([X, Y]) == {X}


def test_a_sku_touched_by_two_scans_waits_for_both(redis_client: redis.Redis) -> None:
    scans = StockScans(redis_client, "t")
    first, second = scans.new_id(), scans.new_id()
    scans.expect(first, "csv:a", [row(X, "WH1")])
    scans.close_source("csv:a")
    scans.expect(second, SOURCE, [ExpectedRow("x2", X, "WH2")])
    assert scans.settle([(first, row(X, "WH1").entry)], [X]) == [], "the second scan is open and touched X"
    assert swept(scans, first) == set()
    scans.close_source(SOURCE)
    assert swept(scans, second) == set(), "its own row of X is not stored yet"
    assert scans.settle([(second, "x2")], [X]) == [X]


def test_closing_a_source_closes_its_older_unfinished_scans_too(redis_client: redis.Redis) -> None:
    scans = StockScans(redis_client, "t")
    aborted, again = scans.new_id(), scans.new_id()
    scans.expect(aborted, SOURCE, [row(X, "WH1")])  # the reader stopped after this page
    scans.expect(again, SOURCE, [row(X, "WH2")])  # the next cycle re-read the window: X's other row
    scans.settle([(aborted, row(X, "WH1").entry)], [X])
    assert scans.close_source(SOURCE) == [aborted], "both closed; only one had rows stored, so a SKU complete"
    assert scans.holding([X]) == {X}
    assert swept(scans, aborted) == set(), "X's row of the new cycle is still on its way"
    assert scans.settle([(again, row(X, "WH2").entry)], [X]) == [X]
    assert scans.close_source("csv:other") == []


def test_a_scan_closed_before_any_of_its_rows_arrived_needs_no_sweep(redis_client: redis.Redis) -> None:
    """A one-page cycle closes its scan before handing the page on: no SKU of it can be complete then."""
    scans = StockScans(redis_client, "t")
    scan, empty = scans.new_id(), scans.new_id()
    scans.expect(scan, SOURCE, [row(X, "WH1")])
    scans.expect(empty, SOURCE, [])
    assert scans.close_source(SOURCE) == [] and scans.stale_sweeps(0) == []
    assert not redis_client.exists(scans.key(empty)), "nothing expected: nothing left"
    assert scans.settle([(scan, row(X, "WH1").entry)], [X]) == [X]
    assert scans.live() == 0 and not redis_client.keys(f"{scans.scan_prefix}*")


def test_a_row_re_read_by_a_later_cycle_completes_the_cycle_that_stopped_after_registering_it(
    redis_client: redis.Redis,
) -> None:
    """The poller registered a page, then died before handing it on (its fingerprints unwritten): the next cycle
    delivers the same changes under the same entries; storing them completes both scans, no false alarm."""
    scans = StockScans(redis_client, "t")
    died, again = scans.new_id(), scans.new_id()
    scans.expect(died, SOURCE, [row(X, "WH1"), row(X, "WH2")])
    scans.expect(again, SOURCE, [row(X, "WH1"), row(X, "WH2")])
    scans.expect(scans.new_id(), "csv:other", [row(X, "WH1")])
    scans.close_source("csv:other")
    scans.close_source(SOURCE)
    assert scans.settle([(again, row(X, "WH1").entry)], [X]) == []
    assert scans.settle([(again, row(X, "WH2").entry)], [X]) == [], "a CSV report expects X@WH1 too: other source"
    assert scans.live() == 1 and scans.holding([X]) == {X}


def test_a_scan_whose_rows_stop_arriving_expires_with_the_rows_it_never_got(redis_client: redis.Redis) -> None:
    scans = StockScans(redis_client, "t")
    scan = scans.new_id()
    scans.expect(scan, SOURCE, [row(X, "WH1"), row(X, "WH2"), row(Y, "WH1")], now=1000.0)
    scans.close_source(SOURCE, now=1001.0)
    scans.settle([(scan, row(X, "WH1").entry)], [X], now=1002.0)
    assert scans.expire(10, now=1011.0) == [], "active 9 s ago"
    assert scans.expire(10, now=1013.0) == [scan]
    assert scans.stale_sweeps(60, now=1013.0) == [], "listed to be swept, not lost yet"
    assert scans.stale_sweeps(60, now=1074.0) == [scan], "a sweep lost with its worker is found again"
    assert scans.stale_sweeps(60, now=1075.0) == [], "handed out once per quiet period"
    gone = scans.expired_report(scan)
    assert gone is not None and (gone.scan, gone.source, gone.closed) == (scan, SOURCE, 1001.0)
    assert gone.missing == {X: ["WH2"], Y: ["WH1"]}
    scans.reported(scan)
    assert scans.expired_report(scan) is None, "reported once"
    assert swept(scans, scan) == {X, Y}
    assert scans.stale_sweeps(0) == []
    assert scans.held() == (0, None)
    assert scans.settle([(scan, row(X, "WH2").entry)], [X]) == [X], "the late row: nothing to wait for"
    assert not redis_client.keys(f"{scans.scan_prefix}*")


def _one_round(scans: StockScans, rnd: int) -> None:
    rng = random.Random(rnd)
    scan = scans.new_id()
    skus = [SkuKey("S", str(rnd), "", "", str(n)).text for n in range(60)]
    rows = [row(sku, wh) for sku in skus for wh in ("WH1", "WH2", "WH3")[: rng.randint(1, 3)]]
    scans.expect(scan, SOURCE, rows)
    todo = rows + rng.sample(rows, 20)  # redeliveries
    rng.shuffle(todo)
    stored: set[str] = set()
    released: list[tuple[str, frozenset[str]]] = []
    lock = threading.Lock()

    def worker(part: list[ExpectedRow]) -> None:
        for r in part:
            with lock:
                stored.add(r.entry)  # the row is stored before its entry is settled
            for sku in scans.complete_with([(scan, r.entry)], [r.sku]):  # asked before: never too early either
                with lock:
                    released.append((sku, frozenset(stored)))
            for sku in scans.settle([(scan, r.entry)], [r.sku]):
                with lock:
                    released.append((sku, frozenset(stored)))

    def closer() -> None:
        scans.close_source(SOURCE)
        cursor = 0
        while True:
            cursor, skus = scans.release_step(scan, cursor, count=7)
            with lock:
                released.extend((sku, frozenset(stored)) for sku in skus)
            if cursor == 0:
                scans.finish(scan)
                return

    threads = [threading.Thread(target=worker, args=(todo[i::6],)) for i in range(6)]
    threads.append(threading.Thread(target=closer))
    rng.shuffle(threads)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {sku for sku, _ in released} == set(skus)
    for sku, seen in released:
        assert {r.entry for r in rows if r.sku == sku} <= seen, f"{sku} released before all its rows"
    assert scans.held() == (0, None) and scans.live() == 0


def test_no_interleaving_of_stores_and_the_close_leaves_a_complete_sku_unreleased(redis_client: redis.Redis) -> None:
    """Many SKUs, their rows stored by 6 threads in random order (some twice), while the reader closes the scan
    and sweeps it: every SKU is released at least once, and never before all its rows were stored (nor said
    complete by `complete_with` before that)."""
    scans = StockScans(redis_client, "t")
    for rnd in range(8):
        _one_round(scans, rnd)
