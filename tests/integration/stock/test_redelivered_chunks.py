"""A stock task that dies part-way and is delivered again still gives every SKU its whole figure.

A CSV inventory report is read into chunks (one `bcsync.stock_records` task each) and a scan; the chunks are run
here, in this process, on the fleet's real Redis, in the order a worker would take them. One chunk dies at a
chosen step (a raised exception: a soft time limit, a killed worker's redelivery), and is then run again whole,
as Celery redelivers it. The figure recorded for every variant, and the one that leaves the fleet for Klaviyo,
must be the ones computed here from the report's rows (`tests/support/split_report.py`), and no SKU may stay held.

Found in CI: a chunk that exceeded its soft time limit after its scan released SKUs, but before it computed
them, was retried; the retry found those SKUs' rows already stored, took "nothing changed" for "already
computed", and their figures were never computed or sent. Found writing this test: a figure marked planned
before it was queued was never queued by the retry of a worker that died in between. What leaves the fleet is
read from the broker's lists and the debounced buffer, not from the flow's own record of what it planned.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import workers.csv_drops
from config.mapping import get_mapping
from config.task_names import RECOMPUTE_STOCK_SWEEP, STOCK_RECORDS
from connectors.bluecherry.csv_drops import MemoryDropTracker, read_drop
from delivery.runtime import Runtime
from flows import stock, stock_complete
from state.keys import RedisKeys
from state.stock import StockState
from state.stock_scans import StockScans
from tests.integration.stock.conftest import MAPPING_TOML
from tests.support.crash_flush import queued_operation_dicts
from tests.support.fleet import dialect_mapping, klaviyo_applying_jobs_on_demand, worker_runtime
from tests.support.split_report import HEADER, write_split_report
from workers.csv_drops import process_drops

pytestmark = pytest.mark.integration

SKUS, CHUNK = 60, 40  # chunks [WH1 0-39], [WH1 40-59 + WH2 0-19], [WH2 20-59]: most SKUs' rows are chunks apart


class Died(Exception):
    """The worker's end at the chosen step."""


@pytest.fixture
def rt(redis_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """This process configured as a worker of the stock fleet (its mapping: WH1 and WH2 sellable)."""
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(dialect_mapping(MAPPING_TOML, "default"))
    with (klaviyo_applying_jobs_on_demand() as (url, _sandbox),
          worker_runtime(redis_url, url, BCSYNC_MAPPING_FILE=str(mapping)) as worker):
        yield worker


def die_once(target: object, name: str, mp: pytest.MonkeyPatch, *, on_call: int = 1, after: bool = False) -> None:
    """Make `target.name` raise `Died` at its `on_call`-th call (after doing its work, with `after`), once."""
    real: Callable[..., Any] = getattr(target, name)
    calls = {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] != on_call:
            return real(*args, **kwargs)
        mp.setattr(target, name, real)  # once: the redelivery runs the real thing
        if after:
            real(*args, **kwargs)
        raise Died(name)

    mp.setattr(target, name, dying)


DEATHS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "storing a SKU": lambda mp: die_once(stock, "store_and_compute", mp, on_call=5),
    "before settling": lambda mp: die_once(StockScans, "settle", mp),
    "after settling": lambda mp: die_once(StockScans, "settle", mp, after=True),
    "planning a figure": lambda mp: die_once(stock, "plan_figure", mp, on_call=3),
    "computing released SKUs": lambda mp: die_once(stock, "recompute_skus", mp),
    "sending a planned figure": lambda mp: die_once(stock, "submit", mp, on_call=2),
    "buffering a planned figure": lambda mp: die_once(StockState, "fold_pending", mp, on_call=2),
}


def held_by_klaviyo(external_id: str) -> int:
    """What Klaviyo holds of each variant before the report, as delivered before: odd SKUs 100, even ones 0 - so
    the report's figures take both lanes (sold out or back in stock: fast; 100 -> another count: batch)."""
    return 100 if int(external_id[1:4]) % 2 else 0


def seed_delivered(state: StockState, external_id: str) -> None:
    """What the fleet knows of a figure it sent before: planned, and on its way - for SKUs whose number ends in 0
    to 4; the others were planned by the code of before `queued` existed (an upgraded installation)."""
    state.set_planned(external_id, held_by_klaviyo(external_id), "0")
    if int(external_id[3]) < 5:
        state.queued(external_id, held_by_klaviyo(external_id), "0")


def read_report(tmp_path: Path, rt: Runtime, mp: pytest.MonkeyPatch) -> tuple[dict[str, int], list[list[Any]]]:
    """The report's truth and the tasks the CSV reader publishes for it (chunks, then any sweep)."""
    drops = tmp_path / "drops"
    drops.mkdir()
    truth = write_split_report(drops, skus=SKUS, chunk=CHUNK)
    mp.setattr(workers.csv_drops, "CHUNK", CHUNK)
    published: list[tuple[str, list[Any]]] = []
    handled = process_drops(drops, MemoryDropTracker(), lambda task, args: published.append((task, args)),
                            lambda *problem: pytest.fail(f"unexpected problem {problem}"), rt.stores.stock_scans)
    assert handled == 1 and [task for task, _ in published][:3] == [STOCK_RECORDS] * 3
    for external_id in truth:
        seed_delivered(rt.stores.stock, external_id)
    return truth, [args for task, args in published if task == STOCK_RECORDS]


def run_chunk(args: list[Any], rt: Runtime) -> None:
    """What `bcsync.stock_records` does with these arguments, in this process."""
    resource, records, observed, scan, first = args
    from tasks.stock import stock_records  # noqa: PLC0415

    stock_records.run(resource, records, observed, scan, first)


def on_their_way(rt: Runtime) -> dict[str, int]:
    """Each variant's newest figure that leaves the fleet: published on a lane (the broker's lists) or waiting
    in the debounced batch buffer - read from Redis, not from the flow's own records of what it planned."""
    keys, newest = RedisKeys(rt.settings.key_prefix), {}
    versions: dict[str, str] = {}
    for lane in ("fast", "default", "batch"):
        for op in queued_operation_dicts(rt.redis, keys.queue(lane)):
            variant = op["payload"].get("external_id", "")
            if op["kind"] == "variant_inventory" and op["version"] >= versions.get(variant, ""):
                versions[variant], newest[variant] = op["version"], op["payload"]["inventory_quantity"]
    for held in rt.stores.stock.pending():
        if held.version >= versions.get(held.external_id, ""):
            versions[held.external_id], newest[held.external_id] = held.version, held.quantity
    return newest


def messages_queued(rt: Runtime) -> int:
    """Messages waiting on the lanes (the broker's lists)."""
    keys = RedisKeys(rt.settings.key_prefix)
    return sum(int(rt.redis.llen(keys.queue(lane))) for lane in ("fast", "default", "batch"))


def assert_truth(truth: dict[str, int], rt: Runtime) -> None:
    """Every variant's figure is computed, and what Klaviyo holds once what left the fleet lands is the truth."""
    recorded = {e: figure[0] for e, figure in rt.stores.stock.figures(list(truth)).items()}
    sent = on_their_way(rt)
    lanes = {"batch" if e in {f.external_id for f in rt.stores.stock.pending()} else "fast" for e in sent}
    assert lanes == {"fast", "batch"}, "the report's figures take both lanes"
    landed = {e: sent.get(e, held_by_klaviyo(e)) for e in truth}
    wrong = {e: (recorded.get(e), landed[e], q) for e, q in truth.items() if recorded.get(e) != q or landed[e] != q}
    assert not wrong, f"{len(wrong)} of {len(truth)} wrong (recorded, landed, truth): {list(wrong.items())[:5]}"
    assert rt.stores.stock_scans.held()[0] == 0, "SKUs still held"


@pytest.mark.parametrize("death", list(DEATHS))
@pytest.mark.parametrize("overlapping", [False, True], ids=["alone", "overlapping"])
@pytest.mark.parametrize("dying_chunk", [1, 2])
def test_a_chunk_that_dies_and_is_delivered_again_leaves_every_figure_whole(
    rt: Runtime, tmp_path: Path, death: str, overlapping: bool, dying_chunk: int
) -> None:
    """Chunks 1 and 2 each complete SKUs whose other rows are in another chunk. `overlapping`: the other of the
    two runs on a second worker while the dying one is between deciding which SKUs it completes and storing
    them (so the dying chunk's settle releases SKUs it did not compute in its step)."""
    with pytest.MonkeyPatch.context() as mp:
        truth, chunks = read_report(tmp_path, rt, mp)
        partner = 3 - dying_chunk
        run_chunk(chunks[0], rt)
        if overlapping:
            real = StockScans.complete_with

            def partner_runs_meanwhile(scans: StockScans, *args: Any) -> set[str]:
                mp.setattr(StockScans, "complete_with", real)
                whole = real(scans, *args)
                run_chunk(chunks[partner], rt)
                DEATHS[death](mp)  # only now: the partner does not die
                return whole

            mp.setattr(StockScans, "complete_with", partner_runs_meanwhile)
        else:
            DEATHS[death](mp)
        with pytest.raises(Died):
            run_chunk(chunks[dying_chunk], rt)
        run_chunk(chunks[dying_chunk], rt)  # delivered again
        if not overlapping:
            run_chunk(chunks[partner], rt)
    assert_truth(truth, rt)


@pytest.mark.parametrize("death", ["computing released SKUs", "planning a figure"])
def test_a_sweep_that_dies_and_is_handed_out_again_leaves_every_figure_whole(
    rt: Runtime, tmp_path: Path, death: str
) -> None:
    """Workers store each chunk before the reader closes the scan (every SKU held: the scan is open), so the
    close hands the scan to a sweep, which computes them; the sweep dies and is handed out again
    (`stale_sweeps`, from beat's `expire_scans`)."""
    scans = rt.stores.stock_scans
    sweeps: list[list[Any]] = []

    def publish(task: str, args: list[Any]) -> None:
        if task == STOCK_RECORDS:
            run_chunk(args, rt)  # at once: the scan is still open
            assert scans.held()[0] > 0, "an open scan holds the SKUs it touched"
        else:
            sweeps.append(args)

    with pytest.MonkeyPatch.context() as mp:
        drops = tmp_path / "drops"
        drops.mkdir()
        truth = write_split_report(drops, skus=SKUS, chunk=CHUNK)
        mp.setattr(workers.csv_drops, "CHUNK", CHUNK)
        for external_id in truth:
            seed_delivered(rt.stores.stock, external_id)
        process_drops(drops, MemoryDropTracker(), publish, lambda *problem: pytest.fail(f"{problem}"), scans)
        assert scans.held()[0] == SKUS and len(sweeps) == 1 and sweeps[0][0] in scans.stale_sweeps(0.0)
        DEATHS[death](mp)
        with pytest.raises(Died):
            stock_complete.release_scan(sweeps[0][0], 0, rt)
    assert scans.stale_sweeps(0.0) == [sweeps[0][0]], "a sweep that died is handed out again"
    stock_complete.release_scan(sweeps[0][0], 0, rt)
    assert_truth(truth, rt)


def test_a_figure_planned_while_an_older_one_is_being_sent_still_reaches_klaviyo(rt: Runtime, tmp_path: Path) -> None:
    """Two planners of one variant: worker A has planned a restock (0 -> 5) and is about to queue it when worker B
    computes the sell-out that follows (5 -> 0, the count Klaviyo last got). B must not take A's figure as sent
    nor Klaviyo's 0 as current: whatever A's figure does, the newest on its way is B's 0."""
    state = rt.stores.stock
    sku = "C001-BLK---M"
    state.set_planned(sku, 0, "0")
    state.queued(sku, 0, "0")  # Klaviyo holds 0, and knew it was on its way

    def report(name: str, wh1: int, when: float) -> list[Any]:
        path = tmp_path / name
        path.write_text(HEADER + f"C001,BLK,,,M,,WH1,{wh1},0,{wh1},0\nC001,BLK,,,M,,WH2,0,0,0,0\n")
        os.utime(path, (when, when))
        drop = read_drop(path, get_mapping())
        return ["inventory", drop.records, drop.observed_at.isoformat(), "", 0]

    restock, sell_out = report("inventory_20261120.csv", 5, 1_800_000_000), report("inventory_20261121.csv", 0,
                                                                                     1_800_000_060)
    with pytest.MonkeyPatch.context() as mp:
        real = stock.submit

        def b_plans_meanwhile(ops: list[Any]) -> Any:
            mp.setattr(stock, "submit", real)
            run_chunk(sell_out, rt)  # worker B, while A is between planning and queuing its figure
            return real(ops)

        mp.setattr(stock, "submit", b_plans_meanwhile)
        run_chunk(restock, rt)
    assert state.figure(sku) is not None and state.figure(sku)[0] == 0  # type: ignore[index]
    assert on_their_way(rt).get(sku) == 0, "Klaviyo would keep the restock's 5 after the sell-out"


@pytest.fixture
def rt_by_lookup(redis_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A worker of a fleet whose sellable warehouses are the Location records flagged sellable (no list)."""
    mapping = tmp_path / "by-lookup.toml"
    mapping.write_text(dialect_mapping('[stock]\nhigh_demand_skus = ["HOT-*"]\ndebounce_seconds = 0.3\n', "default"))
    with (klaviyo_applying_jobs_on_demand() as (url, _sandbox),
          worker_runtime(redis_url, url, BCSYNC_MAPPING_FILE=str(mapping)) as worker):
        yield worker


def locations(observed: str, **sellable: bool) -> list[Any]:
    """A `bcsync.stock_records` message of Location records read at `observed`."""
    return ["location", [{"location": code, "loc_name": code, "sellable": "Y" if flagged else "N"}
                         for code, flagged in sellable.items()], observed, "", 0]


def test_a_location_change_whose_worker_dies_part_way_is_finished_when_delivered_again(
    rt_by_lookup: Runtime, tmp_path: Path
) -> None:
    """WH2 stops being sellable: every SKU is recomputed, a chunk at a time. The worker dies after the first
    chunk; the message delivered again finds WH2's record stored already, and must still recompute the rest."""
    rt = rt_by_lookup
    with pytest.MonkeyPatch.context() as mp:
        truth, chunks = read_report(tmp_path, rt, mp)
        run_chunk(locations("2026-11-20T18:00:00+00:00", WH1=True, WH2=True), rt)
        for args in chunks:
            run_chunk(args, rt)
        assert_truth(truth, rt)
        mp.setattr(stock, "RECOMPUTE_CHUNK", 10)
        die_once(stock, "recompute_skus", mp, on_call=2)
        change = locations("2026-11-21T18:00:00+00:00", WH2=False)
        with pytest.raises(Died):
            run_chunk(change, rt)
        run_chunk(change, rt)  # delivered again
    wh1 = wh1_truth(tmp_path)  # the truth without WH2
    assert wh1 != truth, "WH2 must matter to some figures"
    assert_truth(wh1, rt)


def wh1_truth(tmp_path: Path) -> dict[str, int]:
    """The report's figures with WH1 sellable alone, from its own lines."""
    wh1 = {}
    for line in next((tmp_path / "drops").glob("*.csv")).read_text().splitlines()[1:]:
        style, color, _label, _dim, size, _upc, warehouse, on_hand = line.split(",")[:8]
        if warehouse == "WH1":
            wh1[f"{style}-{color}---{size}"] = max(0, int(on_hand))
    return wh1


Handed = list[tuple[str, list[Any], str]]


def loaded_with_sweeps_in_steps(rt: Runtime, tmp_path: Path, mp: pytest.MonkeyPatch) -> tuple[dict[str, int], Handed]:
    """The report loaded with WH1 and WH2 sellable; from then on every recompute step hands on (to the list
    returned, in place of the broker), 10 keys a step."""
    truth, chunks = read_report(tmp_path, rt, mp)
    run_chunk(locations("2026-11-20T18:00:00+00:00", WH1=True, WH2=True), rt)
    for args in chunks:
        run_chunk(args, rt)
    assert_truth(truth, rt)
    handed: Handed = []
    mp.setattr(stock, "publish", lambda task, args, lane: handed.append((task, args, lane)))
    mp.setattr(stock, "RECOMPUTE_STEP_SECONDS", 0.0)
    mp.setattr(stock, "RECOMPUTE_CHUNK", 10)
    return truth, handed


def test_a_location_sweep_hands_on_step_by_step_and_a_step_that_dies_is_finished_when_delivered_again(
    rt_by_lookup: Runtime, tmp_path: Path
) -> None:
    """A location change re-computes every SKU a step a task (a catalog of any size stays within the tasks' time
    limits): each step hands the rest on with its cursor. One step's worker dies part-way; its message delivered
    again finishes the walk. The locations count as computed only once the walk is over."""
    rt = rt_by_lookup
    state = rt.stores.stock
    with pytest.MonkeyPatch.context() as mp:
        _, handed = loaded_with_sweeps_in_steps(rt, tmp_path, mp)
        run_chunk(locations("2026-11-21T18:00:00+00:00", WH2=False), rt)
        digest = state.locations_digest()
        from tasks.stock import recompute_sweep  # noqa: PLC0415

        steps = 0
        while handed:
            task, args, lane = handed.pop()
            assert (task, lane, args[0]) == (RECOMPUTE_STOCK_SWEEP, "batch", digest) and args[1] != 0
            assert state.locations_computed() != digest, "marked computed before the walk's end"
            steps += 1
            if steps == 2:
                die_once(stock, "recompute_skus", mp, after=True)  # its SKUs computed, the rest not handed on
                with pytest.raises(Died):
                    recompute_sweep.run(*args)
                assert not handed
            recompute_sweep.run(*args)  # (delivered again, at the second step)
        leaving = on_their_way(rt), len(rt.stores.stock.pending()), messages_queued(rt)
        run_chunk(locations("2026-11-21T18:00:00+00:00", WH2=False), rt)  # the change delivered once more
        assert not handed, "a finished walk was walked again"
        assert (on_their_way(rt), len(rt.stores.stock.pending()), messages_queued(rt)) == leaving
    assert steps >= 3, "the walk was not cut into steps: the test proves nothing"
    assert state.locations_computed() == digest
    assert_truth(wh1_truth(tmp_path), rt)


def test_a_location_sweep_stops_when_the_locations_change_again_and_the_newer_sweep_finishes(
    rt_by_lookup: Runtime, tmp_path: Path
) -> None:
    """WH2 made unsellable, then sellable again while the first sweep is handed on: the first sweep's next step
    stops (the second change sweeps every SKU itself) and the figures end as the newest locations say."""
    rt = rt_by_lookup
    state = rt.stores.stock
    with pytest.MonkeyPatch.context() as mp:
        truth, handed = loaded_with_sweeps_in_steps(rt, tmp_path, mp)
        run_chunk(locations("2026-11-21T18:00:00+00:00", WH2=False), rt)
        (_, stale, _), = handed
        handed.clear()
        run_chunk(locations("2026-11-22T18:00:00+00:00", WH2=True), rt)
        newer = list(handed)
        handed.clear()
        from tasks.stock import recompute_sweep  # noqa: PLC0415

        recompute_sweep.run(*stale)
        assert not handed, "a sweep of superseded locations went on"
        handed.extend(newer)
        while handed:
            recompute_sweep.run(*handed.pop()[1])
    assert state.locations_computed() == state.locations_digest()
    assert_truth(truth, rt)
