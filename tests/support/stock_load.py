"""A stock first load on the whole fleet, for the completeness tests and their bench variant
(tests/integration/stock/test_first_load.py, bench/stock_first_load.py).

A Blue Cherry sandbox whose every SKU has a row in three sellable warehouses (WH1 and WH2 from the seeded
tenant, RTN added afterwards so it comes last in `last_mod` order: a SKU's rows are pages apart), negative
figures included; an empty Klaviyo sandbox recording every request; real `bcsync worker` processes (fast lane
at concurrency 4 by default: every inventory row is its own message there), a real `bcsync beat`, and the
production poller run in this process, one cycle at a time. The truth is computed here from the sandbox's own
rows, apart from the fleet's code: its internal model, the same whatever tenant dialect it serves (the fleet
reads that dialect with the dialect's mapping file).
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.drill_fleet import Process
from config.celery import make_app
from config.settings import Settings
from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.bluecherry.sandbox import BlueCherrySandbox
from sandbox.klaviyo.app import create_app as create_klaviyo
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.server import ServerThread
from state.ledger import Ledger
from state.stock import StockState
from state.stock_scans import StockScans
from sync.changes import ChangeEvent
from sync.stock.urgency import inventory_key
from tests.support.fleet import WorkerProcess, configured_like, dialect_mapping, fleet_env, pending_work
from tests.support.recording import recorded_requests
from workers.poller import Emit, build_poller

BC_KEY = "stock-load-key"
SELLABLE = ("WH1", "WH2", "RTN")
RESOURCES = ("style", "inventory", "location")  # the poller's own order: styles first, locations last
MAPPING = """
[stock]
sellable_warehouses = ["WH1", "WH2", "RTN"]
debounce_seconds = 0.3
"""
VARIANT_PREFIX = "$custom:::$default:::"


def model_records(bc: BlueCherrySandbox, resource: str) -> list[dict[str, Any]]:
    """Every record of a resource in the Blue Cherry sandbox's internal model (the default dialect's names and
    values, child rows included), whatever dialect it serves."""
    return [row.record() for row in bc.store.iterate(resource)]


@dataclass(frozen=True)
class Write:
    """One inventory_quantity Klaviyo was sent for a variant."""

    at: str
    external_id: str
    quantity: int
    how: str  # "create" (a variant's creation carries its stock) or "update"


def variant_rows(body: Any) -> Iterator[dict[str, Any]]:
    """Every resource object of a request body that sets a variant's inventory_quantity."""
    if isinstance(body, dict):
        attributes = body.get("attributes")
        if isinstance(attributes, dict) and "inventory_quantity" in attributes:
            yield body
        for value in body.values():
            yield from variant_rows(value)
    elif isinstance(body, list):
        for value in body:
            yield from variant_rows(value)


@dataclass
class StockLoadFleet:
    bc: BlueCherrySandbox
    klaviyo_app: Any
    env: dict[str, str]
    record: Path
    redis: redis.Redis
    celery: Any
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.env["BCSYNC_KEY_PREFIX"]

    @property
    def klaviyo(self) -> KlaviyoSandbox:
        sandbox: KlaviyoSandbox = self.klaviyo_app.state.sandbox
        return sandbox

    # --- Blue Cherry -----------------------------------------------------------------------------
    def records(self, resource: str) -> list[dict[str, Any]]:
        """The tenant's records in the model's names (`model_records`)."""
        return model_records(self.bc, resource)

    def truth(self) -> dict[str, int]:
        """Variant external_id (the mapping's default template) -> available to sell, from the sandbox's rows:
        per active SKU, the sum over the sellable warehouses of available on hand minus open orders, floored at 0
        as a whole (docs/rules.md)."""
        totals: dict[str, int] = {}
        for row in self.records("inventory"):
            key = "-".join(str(row[f]) for f in ("style", "color_code", "lbl_code", "dimension", "size_desc"))
            if row["location"] in SELLABLE:
                totals[key] = totals.get(key, 0) + int(row["qty_avail"]) - int(row["qty_open"])
        active = {
            "-".join(str(v) for v in (style["style"], sku["color_code"], sku["lbl_code"], sku["dimension"],
                                      sku["size_desc"]))
            for style in self.records("style") if style["status"] != "D"
            for sku in style["stylecolorsizes"]["rows-i"] if sku.get("status", "A") != "D"
        }
        return {key: max(0, total) for key, total in totals.items() if key in active}

    # --- the fleet -------------------------------------------------------------------------------
    def poll(self, emit: Callable[[Emit], Emit] | None = None) -> None:
        """One production poller cycle over styles, inventory and locations; `emit` may wrap its hand-off."""
        with configured_like(self.env, self.celery):
            poller = build_poller(RESOURCES)
            if emit is not None:
                poller.emit = emit(poller.emit)
            poller.run_once()

    def settled(self) -> bool:
        """Nothing queued, unacknowledged or scheduled, no stock figure pending, no catalog row waiting."""
        return (pending_work(self.redis, self.prefix) == 0
                and not self.redis.hlen(f"{self.prefix}:stock:pending")
                and not self.redis.hlen(f"{self.prefix}:stock:outbox")
                and not any(job.status != "complete" for job in list(self.klaviyo.jobs.jobs.values())))

    def describe(self, truth: dict[str, int]) -> str:
        """What keeps the load from being done, for a timeout's message: work still pending, jobs not complete,
        figures not the truth, and the end of each worker's log."""
        quantities = self.quantities()
        wrong = {key: (quantities.get(key), quantity) for key, quantity in truth.items()
                 if quantities.get(key) != quantity}
        jobs = [(job_id, job.status) for job_id, job in list(self.klaviyo.jobs.jobs.items())
                if job.status != "complete"]
        writes = [w for w in self.writes() if w.external_id in list(wrong)[:3]]
        stock, scans = StockState(self.redis, self.prefix), StockScans(self.redis, self.prefix)
        fleet_view = {key: {"figure": stock.figure(key), "planned": stock.planned([key]).get(key),
                            "created": bool(stock.created("variant", [key])),
                            "held by a scan": bool(scans.holding([key])),
                            "ledger": Ledger(self.redis, self.prefix).delivered([inventory_key(key)])}
                      for key in list(wrong)[:3]}
        logs = "\n".join(f"--- {worker.lane} worker ---\n{worker.output()[-3000:]}" for worker in self.workers)
        return (f"pending work {pending_work(self.redis, self.prefix)}, "
                f"stock pending {self.redis.hlen(f'{self.prefix}:stock:pending')}, "
                f"stock outbox {self.redis.hlen(f'{self.prefix}:stock:outbox')}, "
                f"jobs not complete {jobs[:5]} ({len(jobs)}), "
                f"{len(wrong)} figures wrong (Klaviyo, truth), e.g. {list(wrong.items())[:5]}, their writes {writes}, "
                f"the fleet's view {fleet_view}, held figures {scans.held()}\n{logs}")

    # --- Klaviyo ---------------------------------------------------------------------------------
    def quantities(self) -> dict[str, Any]:
        return {vid[len(VARIANT_PREFIX):]: v.attributes.get("inventory_quantity")
                for vid, v in list(self.klaviyo.catalog.variants.items())}

    def writes(self) -> list[Write]:
        """Every inventory_quantity sent to Klaviyo so far, in order of arrival (the sandbox's request log)."""
        out: list[Write] = []
        for entry in recorded_requests(self.record):
            if entry["method"] not in ("POST", "PATCH") or not str(entry["path"]).startswith("/api/catalog-variant"):
                continue
            how = "create" if "create" in entry["path"] or entry["path"] == "/api/catalog-variants" else "update"
            for row in variant_rows(entry["body"]):
                attributes = row["attributes"]
                external_id = attributes.get("external_id") or str(row.get("id", ""))[len(VARIANT_PREFIX):]
                out.append(Write(entry["time"], external_id, int(attributes["inventory_quantity"]), how))
        return out

    def partial_writes(self, truth: dict[str, int]) -> list[Write]:
        """Writes of a figure that is not the variant's truth: an update of any other figure, or a creation
        with anything but the truth or 0 (a variant created before its figure was computed says 0)."""
        return [w for w in self.writes() if w.external_id in truth and w.quantity != truth[w.external_id]
                and not (w.how == "create" and w.quantity == 0)]


def third_warehouse(bc_url: str, bc: BlueCherrySandbox, seed: int = 11) -> None:
    """A row in RTN for every SKU, written now (after every seeded row): about a third negative (units owed),
    so a figure summed without it is too high - the false back-in-stock alert."""
    inventory = model_records(bc, "inventory")
    rng = random.Random(seed)
    upcs = sorted({row["upc"] for row in inventory})
    ops = [{"op": "adjust_stock", "upc": upc, "location": "RTN",
            "qty_oh": -rng.randint(1, 30) if rng.random() < 0.35 else rng.randint(1, 9)} for upc in upcs]
    r = httpx.post(f"{bc_url}/_sandbox/apply", json=ops, timeout=120)
    r.raise_for_status()


@contextmanager
def stock_load_fleet(redis_url: str, *, styles: int, fast: int = 4, batch: int = 2, folder: Path | None = None,
                     dialect: str = "default", **settings: str) -> Iterator[StockLoadFleet]:
    """Both sandboxes, workers on the fast and batch lanes and a beat, for one tenant of `styles` styles (about 15
    SKUs each) speaking `dialect`, read with that dialect's mapping; stopped by their ids on leaving."""
    with ExitStack() as stack:
        folder = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bcsync-stock-load-")))
        bc_app = create_bluecherry(BlueCherrySandboxConfig(
            subscription_key=BC_KEY, customers=0, styles=styles, orders=0, start_time="2026-03-02 10:00:00",
            frozen=True, dialect=dialect))
        bc = stack.enter_context(ServerThread(bc_app))
        bc_model: BlueCherrySandbox = bc_app.state.sandbox
        third_warehouse(bc.url, bc_model)
        record = folder / "klaviyo.jsonl"
        klaviyo_app = create_klaviyo(KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record,
                                                          job_step_seconds=0.1))
        klaviyo = stack.enter_context(ServerThread(klaviyo_app))
        mapping = folder / "mapping.toml"
        mapping.write_text(dialect_mapping(MAPPING, dialect))
        env = fleet_env(redis_url, klaviyo.url, dialect, BCSYNC_BLUECHERRY_BASE_URL=bc.url,
                        BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=BC_KEY, BCSYNC_MAPPING_FILE=str(mapping),
                        BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS="20", BCSYNC_TASK_TIME_LIMIT_SECONDS="30", **settings)
        values = {k[len("BCSYNC_"):].lower(): v for k, v in env.items() if k.startswith("BCSYNC_")}
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        stack.callback(client.close)
        fleet = StockLoadFleet(bc_model, klaviyo_app, env, record, client, make_app(Settings.model_validate(values)))
        for lane, concurrency in (("fast", fast), ("batch", batch)):
            fleet.workers.append(WorkerProcess(lane, env, concurrency))
            stack.callback(fleet.workers[-1].stop)
        starting = [threading.Thread(target=worker.start) for worker in fleet.workers]  # both boot at once
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        if not all(worker.process is not None and worker.process.poll() is None for worker in fleet.workers):
            raise RuntimeError("a worker did not start: " + " | ".join(w.output()[-2000:] for w in fleet.workers))
        beat = Process("beat", [sys.executable, "-m", "workers.cli", "beat", "--loglevel", "INFO"], env,
                       folder / "beat.log").start()
        stack.callback(beat.stop)
        yield fleet


def dropping(keep: Callable[[ChangeEvent], bool]) -> Callable[[Emit], Emit]:
    """An emit that loses the events `keep` refuses (a message lost on its way to the workers)."""
    def wrap(emit: Emit) -> Emit:
        return lambda events: emit([event for event in events if keep(event)])
    return wrap
