"""A stock task that dies part-way and is delivered again still gives every SKU its whole figure.

A CSV inventory report is read into chunks (one `bcsync.stock_records` task each) and a scan; the chunks are run
here, in this process, on the fleet's real Redis, in the order a worker would take them. One chunk dies at a
chosen step (a raised exception: a soft time limit, a killed worker's redelivery), and is then run again whole,
as Celery redelivers it. The figures recorded and planned for every variant must be the ones computed here from
the report's rows (`tests/support/split_report.py`), and no SKU may stay held.

Found in CI: a chunk that exceeded its soft time limit after its scan released SKUs, but before it computed
them, was retried; the retry found those SKUs' rows already stored, took "nothing changed" for "already
computed", and their figures were never computed or sent. Found writing this test: a figure marked planned
before it was queued was never queued by the retry of a worker that died in between. What leaves the fleet is
read from the broker's lists and the debounced buffer, not from the flow's own record of what it planned.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import workers.csv_drops
from config.task_names import STOCK_RECORDS
from connectors.bluecherry.csv_drops import MemoryDropTracker
from delivery.runtime import Runtime
from flows import stock, stock_complete
from state.keys import RedisKeys
from state.stock_scans import StockScans
from tests.integration.stock.conftest import MAPPING_TOML
from tests.support.fleet import dialect_mapping, klaviyo_applying_jobs_on_demand, worker_runtime
from tests.support.split_report import write_split_report
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
}


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
    # Klaviyo holds 0 for each variant, as delivered before
    for external_id in truth:
        rt.stores.stock.set_planned(external_id, 0, "0")
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
        for raw in rt.redis.lrange(keys.queue(lane), 0, -1):
            args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
            for op in args[0]["operations"]:
                variant = op["payload"].get("external_id", "")
                if op["kind"] == "variant_inventory" and op["version"] >= versions.get(variant, ""):
                    versions[variant], newest[variant] = op["version"], op["payload"]["inventory_quantity"]
    for held in rt.stores.stock.pending():
        if held.version >= versions.get(held.external_id, ""):
            versions[held.external_id], newest[held.external_id] = held.version, held.quantity
    return newest


def assert_truth(truth: dict[str, int], rt: Runtime) -> None:
    """Every variant's figure is computed, and the one that reaches Klaviyo is the truth (Klaviyo held 0)."""
    recorded = {e: figure[0] for e, figure in rt.stores.stock.figures(list(truth)).items()}
    sent = on_their_way(rt)
    wrong = {e: (recorded.get(e), sent.get(e, 0), q) for e, q in truth.items()
             if recorded.get(e) != q or sent.get(e, 0) != q}
    assert not wrong, f"{len(wrong)} of {len(truth)} wrong (recorded, sent, truth): {list(wrong.items())[:5]}"
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
            rt.stores.stock.set_planned(external_id, 0, "0")
        process_drops(drops, MemoryDropTracker(), publish, lambda *problem: pytest.fail(f"{problem}"), scans)
        assert scans.held()[0] == SKUS and len(sweeps) == 1 and sweeps[0][0] in scans.stale_sweeps(0.0)
        DEATHS[death](mp)
        with pytest.raises(Died):
            stock_complete.release_scan(sweeps[0][0], 0, rt)
    assert scans.stale_sweeps(0.0) == [sweeps[0][0]], "a sweep that died is handed out again"
    stock_complete.release_scan(sweeps[0][0], 0, rt)
    assert_truth(truth, rt)
