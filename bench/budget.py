"""How much of Klaviyo's budget the fleet uses, endpoint family by endpoint family, at Klaviyo's real numbers.

    .venv/bin/python -m bench.budget                                  # 5 minutes of load, then the CPU runs
    .venv/bin/python -m bench.budget --minutes 1 --orders 2000        # a quick smoke run (~4 minutes)
    .venv/bin/python -m bench.budget --background-share 0.3           # another integration takes 30% of each window
    .venv/bin/python -m bench.budget --minutes 5 --orders 100000 --write docs/performance.md

Everything is real: a private redis-server, the Klaviyo sandbox as a subprocess enforcing Klaviyo's own
numbers (`--rate-scale 1`: the sandbox's limits are Klaviyo's documented tiers), and `bcsync worker` processes
per lane configured like production (rate share floor 0.8, share max 1.0, fast reserve 0.25).

1. Budget (`--minutes`, default 5): a feeder keeps every family's backlog full at once - single events on the
   default lane (`POST /api/events`), bulk event jobs of 1,000 (`POST /api/event-bulk-create-jobs`), bulk
   profile imports of `--profile-rows` (`POST /api/profile-bulk-import-jobs`, polled until complete) and
   catalog variant updates of 100 rows (`POST /api/catalog-variant-bulk-update-jobs`, `--variants` variants
   the fleet creates first) on the batch lane - while one fast-lane event a second measures how long fast work
   takes from its hand-off to the lane until Klaviyo accepted it (the ledger's delivered_at; the poller's
   interval comes on top for an ERP change). Counted after the first minute (the adaptive share's climb):
   units per minute (accepted requests x rows per request), requests per minute as a share of the endpoint's
   ceiling (the sandbox's steady limit), 429s per 1,000 requests, fast-lane p50/p99/max.
   `--background-share S`: the sandbox's background consumer (`background_share`, another integration on the
   account) takes S of every window of every endpoint throughout.
2. CPU per single event: `--cpu-events` single events through one default-lane worker, at Klaviyo's real
   limits and unlimited (sandbox and fleet at 1,000x Klaviyo's numbers); worker (with its pool) + redis-server CPU
   seconds over the events, so the limiter's cost is the difference.
3. Full bulk jobs (`--orders N`, 0 skips): `bcsync backfill customers`, then `bcsync backfill orders`, of a
   generated tenant of N orders (the Blue Cherry sandbox) through a batch worker; the share of the bulk event
   jobs Klaviyo accepted that carry 1,000 events (the sandbox's `bulk_event_job_sizes`).

Prints the results as a markdown block; `--write FILE` also puts it into FILE (replacing the block between
its `<!-- bench.budget -->` markers, or `<!-- bench.budget background S -->` for a run with a background
consumer; appended if absent). Every process
started here is stopped by its pid, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis as redis_lib

ROOT = Path(__file__).resolve().parents[1]

from bench.delivery import Fleet, KlaviyoSandboxProcess, console  # noqa: E402
from bench.yardstick import describe, yardstick_ms  # noqa: E402
from config.celery import make_app  # noqa: E402
from config.settings import Settings  # noqa: E402
from connectors.klaviyo.limiter import FleetRateLimiter  # noqa: E402
from delivery.envelope import envelope  # noqa: E402
from delivery.packing import group_for_delivery  # noqa: E402
from delivery.publish import PUBLISH_BATCH, publish_batch  # noqa: E402
from sandbox.bluecherry.app import create_app as create_bluecherry  # noqa: E402
from sandbox.bluecherry.config import BlueCherrySandboxConfig  # noqa: E402
from sandbox.redis_server import PrivateRedis  # noqa: E402
from sandbox.server import ServerThread  # noqa: E402
from state.ledger import Ledger  # noqa: E402
from state.stock import StockState  # noqa: E402
from sync.operations import Operation  # noqa: E402
from tests.support.fleet import WorkerProcess, fleet_env, wait_for, wait_idle  # noqa: E402

MARK = "bench.budget"  # a run with a background consumer writes its own block: "bench.budget background 0.3"
ITEM = "BENCH-ITEM"
SINGLE_CEILING = 3500  # POST /api/events, steady per minute (Klaviyo's XL tier, the sandbox's limit at scale 1)
CATALOG_KINDS = {"variant_inventory", "catalog_item_upsert", "catalog_variant_upsert"}
BASE_VERSION = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@dataclass
class Family:
    name: str
    endpoint: str  # the sandbox's stats key
    lane: str
    rows: int  # operations per request
    unit: str
    # requests kept waiting ahead of the fleet: the batch families about 2.4 s of their ceilings each (bulk 6 of
    # 150/min, catalog 30 of 750/min). With 15, catalog's 15 published-not-accepted spent 1.2-1.5 s in a 30-50
    # task batch queue: the feeder, not the fleet, bounded catalog at 80% (Little's law).
    backlog: int
    make: Callable[[int, int], list[Operation]]  # (first number, count) -> operations
    fleet_key: str = ""  # the fleet limiter's endpoint key (connectors/klaviyo/endpoints.py)
    published: int = 0  # requests


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def events(first: int, count: int, lane: str, run: str, metric: str = "Ordered Product") -> list[Operation]:
    return [Operation(
        kind="event", key=f"event:{metric}:{run}-{lane}-{n}", lane=lane, record=f"order:SO{n // 3}",
        payload={"metric": metric, "profile": {"email": f"shopper{n // 5}@example.com"},
                 "properties": {"OrderId": f"SO{n // 3}", "SKU": f"STYLE{n % 97}-BLK-M", "Quantity": 1},
                 "time": now_iso(), "value": 49.5, "value_currency": "USD", "unique_id": f"{run}-{lane}-{n}"},
    ) for n in range(first, first + count)]


def profiles(first: int, count: int, run: str) -> list[Operation]:
    return [Operation(kind="profile_upsert", key=f"profile:bench:{run}:{n}", lane="batch",
                      payload={"email": f"p{n}-{run}@example.com", "first_name": f"Bench{n}",
                               "properties": {"bench_run": run}})
            for n in range(first, first + count)]


def stock_version(n: int) -> str:
    """Figure versions that only grow (the sender drops a figure older than one already delivered)."""
    stamp = (BASE_VERSION + timedelta(microseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"2026-11-20T10:00:00~{stamp}Z"


def variant_ids(count: int) -> list[str]:
    return [f"BENCH-{n:05d}" for n in range(count)]


def inventory(first: int, count: int, pool: list[str]) -> list[Operation]:
    return [Operation(kind="variant_inventory", key=f"variant-inventory:{pool[n % len(pool)]}", lane="batch",
                      version=stock_version(n), payload={"external_id": pool[n % len(pool)],
                                                         "inventory_quantity": n % 50})
            for n in range(first, first + count)]


# --- the fleet ------------------------------------------------------------------------------------


@contextmanager
def running(redis: PrivateRedis, sandbox: KlaviyoSandboxProcess, lanes: dict[str, int], **env: str) -> Iterator[Fleet]:
    """Worker processes per lane (lane -> concurrency) over the sandbox; stopped by pid on the way out."""
    with ExitStack() as stack:
        environment = fleet_env(redis.url, sandbox.url, BCSYNC_VISIBILITY_TIMEOUT_SECONDS="300",
                                BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS="120", BCSYNC_TASK_TIME_LIMIT_SECONDS="180",
                                **env)
        workers = [WorkerProcess(lane, environment, concurrency) for lane, concurrency in lanes.items()]
        for worker in workers:
            stack.callback(worker.stop)
        for worker in workers:
            worker.start()
        yield Fleet(sandbox, environment, workers)


UNLIMITED_SCALE = 1000.0  # "unlimited": the sandbox and the fleet at 1,000x Klaviyo's numbers, so no limit binds


def sandbox_process(limits: bool = True, scale: float = 1.0) -> KlaviyoSandboxProcess:
    return KlaviyoSandboxProcess(scale if limits else None).start()


def endpoint_stats(sandbox: KlaviyoSandboxProcess) -> dict[str, dict[str, Any]]:
    return dict(sandbox.stats()["endpoints"])


def accepted(stats: dict[str, dict[str, Any]], endpoint: str) -> int:
    statuses = stats.get(endpoint, {}).get("statuses", {})
    return sum(int(n) for code, n in statuses.items() if code.startswith("2"))


# --- part 1: the budget -----------------------------------------------------------------------------


@dataclass
class FamilyRow:
    family: str
    unit: str
    units_per_minute: float
    requests_per_minute: float
    ceiling_per_minute: int
    throttled_per_1000: float
    requests: int

    @property
    def share(self) -> float:
        return self.requests_per_minute / self.ceiling_per_minute if self.ceiling_per_minute else 0.0


@dataclass
class Recovery:
    """How fast the fleet takes the budget back once the background consumer stops: every family's share of
    its ceiling over the last RECOVERY_WINDOW seconds, sampled every few seconds after the stop."""
    samples: list[tuple[float, dict[str, float]]]  # (seconds since the stop, family -> share)

    def climbed(self, share: float = 0.9) -> float | None:
        """Seconds after the stop at which every family's trailing share first reached `share`."""
        return next((t for t, shares in self.samples if shares and min(shares.values()) >= share), None)


RECOVERY_WINDOW = 60.0  # seconds: the trailing window a recovery sample is measured over (Klaviyo counts per minute)
RECOVERY_SECONDS = 180.0  # how long the recovery is followed


def follow_recovery(sandbox: KlaviyoSandboxProcess, families: list[Family], feeder: Feeder,
                    trace: Callable[[Family], str] | None = None) -> Recovery:
    """Stop the sandbox's background consumer, then sample each family's trailing share of its ceiling."""
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"background_share": 0.0}, timeout=10).raise_for_status()
    stopped = time.time()
    history: list[tuple[float, dict[str, dict[str, Any]]]] = [(stopped, endpoint_stats(sandbox))]
    samples: list[tuple[float, dict[str, float]]] = []
    while time.time() - stopped < RECOVERY_SECONDS:
        if feeder.error:
            raise feeder.error
        time.sleep(5.0)
        now, stats = time.time(), endpoint_stats(sandbox)
        history.append((now, stats))
        if now - stopped < RECOVERY_WINDOW:
            if trace is not None:
                console.print(f"  {now - stopped:5.0f} s after the stop; fleet: "
                              + "; ".join(trace(family) for family in families))
            continue
        then, old = next((t, st) for t, st in history if t >= now - RECOVERY_WINDOW - 0.5)
        minutes = (now - then) / 60
        shares = {}
        for family in families:
            ceiling = int(stats.get(family.endpoint, {}).get("steady_limit", 0))
            done = accepted(stats, family.endpoint) - accepted(old, family.endpoint)
            shares[family.name] = done / minutes / ceiling if ceiling else 0.0
        samples.append((round(now - stopped, 1), shares))
        console.print(f"  {now - stopped:5.0f} s after the stop: "
                      + ", ".join(f"{name} {share:.0%}" for name, share in shares.items()))
        if trace is not None:
            console.print("        fleet: " + "; ".join(trace(family) for family in families))
    return Recovery(samples)


def limiter_trace(fleet: Fleet, client: redis_lib.Redis, sandbox: KlaviyoSandboxProcess) -> Callable[[Family], str]:
    """One family's view from the fleet's limiter, for the recovery's log: its share now, what it knows of
    Klaviyo's window (remaining, another integration's requests), its own requests counted, and - for catalog
    jobs - the jobs in flight and the status reads Klaviyo accepted and refused so far."""
    prefix = fleet.env["BCSYNC_KEY_PREFIX"]
    limiter = FleetRateLimiter(client, prefix, share=0.8)
    stock = StockState(client, prefix)
    processes = {w.lane: [w.pid] for w in fleet.workers}
    processes["klaviyo sandbox"] = [sandbox.process.pid] if sandbox.process else []

    def machine_busy() -> float:
        times = psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    busy = {name: (cpu_seconds(pids), time.time()) for name, pids in processes.items()}
    busy["machine"] = (machine_busy(), time.time())

    def cpu_use() -> str:
        """Cores busy since the last line: each lane's worker (main and pool processes), the Klaviyo sandbox,
        the whole machine (of its psutil.cpu_count())."""
        parts = []
        for name in busy:
            (before, then), now = busy[name], (
                machine_busy() if name == "machine" else cpu_seconds(processes[name]), time.time())
            busy[name] = now
            parts.append(f"{name} {(now[0] - before) / max(0.001, now[1] - then):.2f}")
        return f"cores busy (of {psutil.cpu_count()}): " + ", ".join(parts)

    def trace(family: Family) -> str:
        usage = limiter.usage(family.fleet_key)
        window = usage["klaviyo_window"] or {}
        acquired = client.hget(limiter._share_key(family.fleet_key), "a")  # noqa: SLF001  the count its scripts keep
        tail = client.get(limiter._line_key(family.fleet_key, family.lane))  # noqa: SLF001  the line's tail (ms)
        ahead = (float(tail) / 1000 - limiter.server_time()) if tail else 0.0
        outstanding = family.published - accepted(endpoint_stats(sandbox), family.endpoint)
        text = (f"{family.fleet_key} share {usage['share']:.2f} left {window.get('remaining', '-')} "
                f"foreign {window.get('foreign', '-')} a {acquired} line {max(0.0, ahead):.1f} s ahead, "
                f"{outstanding} published not accepted")
        if family.fleet_key == "catalog-bulk":
            stats = endpoint_stats(sandbox).get("GET /api/catalog-variant-bulk-update-jobs/{job_id}", {})
            waiting: dict[str, int] = {}
            for raw in client.hvals(f"{prefix}:delayed:payload"):
                task = json.loads(raw)["task"].rsplit(".", 1)[-1]
                waiting[task] = waiting.get(task, 0) + 1
            text += (f" jobs {stock.jobs_in_flight()} reads {accepted({'x': stats}, 'x')} "
                     f"(429 {stats.get('throttled', 0)}); batch queue {client.llen(f'{prefix}:broker:batch')}, "
                     f"scheduled {waiting}; {cpu_use()}")
        return text

    return trace


@dataclass
class BudgetResult:
    rows: list[FamilyRow]
    fast_latencies: list[float] = field(default_factory=list)
    minutes: float = 0.0
    background_share: float = 0.0
    recovery: Recovery | None = None  # after the background consumer stopped

    def fast_percentile(self, q: float) -> float | None:
        if not self.fast_latencies:
            return None
        ordered = sorted(self.fast_latencies)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


class Feeder(threading.Thread):
    """Keeps each family's requests not yet accepted at its backlog; one fast-lane event a second."""

    def __init__(self, fleet: Fleet, families: list[Family], ledger: Ledger) -> None:
        super().__init__(name="bench-feeder", daemon=True)
        self.fleet, self.families, self.ledger = fleet, families, ledger
        self.publish = Publisher(fleet)
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.fast_sent: dict[str, float] = {}  # key -> when handed to the fast lane
        self.measure_from = math.inf  # fast events handed over from then on are counted
        self.run_id = uuid.uuid4().hex[:6]

    def run(self) -> None:
        try:
            next_fast = time.time()
            while not self.stopping.is_set():
                stats = endpoint_stats(self.fleet.sandbox)
                for family in self.families:
                    missing = family.backlog - (family.published - accepted(stats, family.endpoint))
                    groups = [family.make((family.published + i) * family.rows, family.rows)
                              for i in range(max(0, missing))]
                    self.publish(*groups)
                    family.published += len(groups)
                if time.time() >= next_fast:
                    key_op = events(len(self.fast_sent), 1, "fast", self.run_id, metric="Cancelled Order")
                    self.publish(key_op)
                    self.fast_sent[key_op[0].key] = time.time()
                    next_fast += 1.0
                self.stopping.wait(0.25)
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def latencies(self) -> list[float]:
        return [latency for _, latency in self.timed_latencies()]

    def timed_latencies(self) -> list[tuple[float, float]]:
        """(when handed over, seconds since the count began; how long it took) of each fast event counted."""
        counted = {k: t for k, t in self.fast_sent.items() if t >= self.measure_from}
        delivered = self.ledger.delivered(sorted(counted))
        return [(counted[key] - self.measure_from, max(0.0, entry.delivered_at - counted[key]))
                for key, entry in delivered.items()]


class Publisher:
    """Publishes as producers do (`delivery.packing.group_for_delivery`, the per-kind task names), over one
    Celery app configured like the workers; each group of operations is packed on its own (one request)."""

    def __init__(self, fleet: Fleet) -> None:
        settings = Settings(**{k[len("BCSYNC_"):].lower(): v for k, v in fleet.env.items()  # type: ignore[arg-type]
                               if k.startswith("BCSYNC_")})
        self.app = make_app(settings)

    def __call__(self, *groups: list[Operation]) -> None:
        envelopes = [env for group in groups for env in self.envelopes(group)]
        with self.app.producer_or_acquire() as producer:  # in pipelines of PUBLISH_BATCH, as `submit` publishes
            for start in range(0, len(envelopes), PUBLISH_BATCH):
                publish_batch(producer, envelopes[start:start + PUBLISH_BATCH], celery_app=self.app)

    @staticmethod
    def envelopes(group: list[Operation]) -> list[dict[str, Any]]:
        """Catalog rows are packed by the stock flush itself (`flows.stock._flush_envelopes`), not by
        `group_for_delivery`: a group of them is one bulk job's envelope, as the flush makes it."""
        if len(group) > 1 and {op.kind for op in group} <= CATALOG_KINDS:
            return [envelope(group, group[0].lane)]
        return group_for_delivery(group)


def create_variants(fleet: Fleet, client: redis_lib.Redis, prefix: str, pool: list[str]) -> None:
    """The catalog the stock updates write to: one item and its variants, created by the fleet itself."""
    item = Operation(kind="catalog_item_upsert", key=f"catalog-item:{ITEM}", lane="batch", payload={
        "external_id": ITEM, "title": "Bench item", "description": "Bench item", "url": "https://shop.example.com",
        "price": 10.0, "published": True})
    publish = Publisher(fleet)
    publish([item])
    state = StockState(client, prefix)
    wait_for(lambda: state.created("item", [ITEM]), 120, 0.5, "the bench item in Klaviyo")
    variants = [Operation(kind="catalog_variant_upsert", key=f"catalog-variant:{v}", lane="batch", payload={
        "external_id": v, "item_external_id": ITEM, "title": v, "description": v, "sku": v,
        "inventory_quantity": 0, "inventory_policy": 0, "price": 10.0, "url": "https://shop.example.com",
        "published": True}) for v in pool]
    publish(*(variants[start:start + 100] for start in range(0, len(variants), 100)))
    wait_for(lambda: len(state.created("variant", pool)) == len(pool), 600, 1.0, f"{len(pool)} variants created")


def budget(redis: PrivateRedis, minutes: float, profile_rows: int, variants: int, background: float,
           concurrency: int) -> BudgetResult:
    sandbox = sandbox_process(limits=True)
    try:
        with running(redis, sandbox, {"fast": 1, "default": concurrency, "batch": concurrency}) as fleet:
            client = redis_lib.Redis.from_url(redis.url, decode_responses=True)
            prefix = fleet.env["BCSYNC_KEY_PREFIX"]
            pool = variant_ids(variants)
            console.print(f"  creating {len(pool):,} catalog variants through the fleet")
            create_variants(fleet, client, prefix, pool)
            if background:
                httpx.post(f"{sandbox.url}/_sandbox/faults", json={"background_share": background},
                           timeout=10).raise_for_status()
            run = uuid.uuid4().hex[:6]
            families = [
                Family("bulk events", "POST /api/event-bulk-create-jobs", "batch", 1000, "events", 6,
                       lambda first, n: events(first, n, "batch", run), "event-bulk-create-jobs"),
                Family("single events", "POST /api/events", "default", 1, "events", 600,
                       lambda first, n: events(first, n, "default", run), "events"),
                Family("bulk profile import", "POST /api/profile-bulk-import-jobs", "batch", profile_rows,
                       "profiles", 6, lambda first, n: profiles(first, n, run), "profile-bulk-import-jobs"),
                Family("catalog variant updates", "POST /api/catalog-variant-bulk-update-jobs", "batch", 100,
                       "variants", 30, lambda first, n: inventory(first, n, pool), "catalog-bulk"),
            ]
            feeder = Feeder(fleet, families, Ledger(client, prefix))
            feeder.start()
            try:
                console.print(f"  load on every family; counting {minutes:g} minute(s) after the first")
                time.sleep(60)
                feeder.measure_from = time.time()
                begin, t0 = endpoint_stats(sandbox), time.time()
                deadline = t0 + 60 * minutes
                while time.time() < deadline:
                    if feeder.error:
                        raise feeder.error
                    time.sleep(min(10.0, max(0.0, deadline - time.time())))
                end, t1 = endpoint_stats(sandbox), time.time()
                recovery = None
                if background:
                    console.print(f"  the background consumer stops; following the fleet for {RECOVERY_SECONDS:g} s")
                    recovery = follow_recovery(sandbox, families, feeder, limiter_trace(fleet, client, sandbox))
            finally:
                feeder.stopping.set()
                feeder.join(timeout=60)
            time.sleep(3)  # the last fast events counted reach the ledger
            span = (t1 - t0) / 60
            rows = []
            for family in families:
                done = accepted(end, family.endpoint) - accepted(begin, family.endpoint)
                received = end.get(family.endpoint, {}).get("received", 0) - begin.get(family.endpoint, {}).get(
                    "received", 0)
                throttled = end.get(family.endpoint, {}).get("throttled", 0) - begin.get(family.endpoint, {}).get(
                    "throttled", 0)
                rows.append(FamilyRow(family.name, family.unit, done * family.rows / span, done / span,
                                      int(end.get(family.endpoint, {}).get("steady_limit", 0)),
                                      1000 * throttled / received if received else 0.0, received))
            slowest = sorted(feeder.timed_latencies(), key=lambda x: -x[1])[:8]
            console.print("  slowest fast events (handed over at, took): "
                          + ", ".join(f"{at:.0f} s {took:.2f} s" for at, took in slowest)
                          + f" (seconds since the count began; the load's window ended at "
                          f"{t1 - feeder.measure_from:.0f} s)")
            result = BudgetResult(rows, feeder.latencies(), span, background, recovery)
            client.close()
            return result
    finally:
        sandbox.stop()


# --- part 2: CPU per single event ---------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in (proc, *proc.children(recursive=True)):
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


IDLE_SECONDS = 5.0  # how long the started fleet is watched idle before the events


def cpu_per_event(redis: PrivateRedis, count: int, limits: bool) -> tuple[float, float]:
    """(worker + Redis CPU ms per single event, events per minute) for `count` single events."""
    # the unlimited run keeps the sandbox's limits (and its RateLimit headers) consistent with the fleet's scale
    sandbox = sandbox_process(scale=1.0 if limits else UNLIMITED_SCALE)
    try:
        scale = {} if limits else {"BCSYNC_RATE_LIMIT_SCALE": str(UNLIMITED_SCALE)}
        with running(redis, sandbox, {"default": 2}, **scale) as fleet:
            pids = [w.process.pid for w in fleet.workers if w.process is not None] + [redis.process.pid]
            # what the started fleet spends idle (its drainer, heartbeats, Celery's loop) is not an event's cost;
            # nor is its start-up, which the count once caught a part of, by chance (bench.compare does the same)
            wait_idle(redis_lib.Redis.from_url(redis.url), fleet.env["BCSYNC_KEY_PREFIX"])
            idle_from, idle_before = time.time(), cpu_seconds(pids)
            time.sleep(IDLE_SECONDS)
            idle_rate = (cpu_seconds(pids) - idle_before) / (time.time() - idle_from)
            before, start = cpu_seconds(pids), time.time()
            run = uuid.uuid4().hex[:6]
            Publisher(fleet)(events(0, count, "default", run))
            wait_for(lambda: accepted(endpoint_stats(sandbox), "POST /api/events") >= count, 1800, 0.5,
                     f"{count} single events accepted")
            seconds = time.time() - start
            used = max(0.0, cpu_seconds(pids) - before - idle_rate * seconds)
            return 1000 * used / count, 60 * count / seconds
    finally:
        sandbox.stop()


# --- part 3: full bulk jobs in a backfill ---------------------------------------------------------------


@dataclass
class BackfillJobs:
    sizes: dict[int, int]  # events per accepted bulk job -> jobs
    queued: int  # events the backfill queued
    stored: int  # events Klaviyo stored when counted


def backfill_jobs(redis: PrivateRedis, orders: int, settle_seconds: float = 60.0) -> BackfillJobs:
    """The bulk event jobs of an order backfill of `orders` generated orders, counted once every queued event
    is stored or nothing more arrived for `settle_seconds` (events waiting for a customer's profile, which no
    customer sync creates here, wait BCSYNC_PROFILE_WAIT_SECONDS)."""
    key = "bench-key"
    bc = ServerThread(create_bluecherry(BlueCherrySandboxConfig(
        subscription_key=key, customers=max(1, orders // 4), styles=60, orders=orders,
        start_time="2026-03-02 10:00:00", frozen=True))).start(timeout=3600)
    sandbox = sandbox_process(limits=True)
    try:
        with running(redis, sandbox, {"batch": 2}, BCSYNC_BLUECHERRY_BASE_URL=bc.url,
                     BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=key) as fleet:
            # customers first, as an onboarding does: an order event names its customer's Klaviyo profile
            client = redis_lib.Redis.from_url(redis.url, decode_responses=True)
            prefix = fleet.env["BCSYNC_KEY_PREFIX"]
            cli = [sys.executable, "-m", "workers.cli", "backfill"]
            for command in ("customers", "orders"):
                done = subprocess.run([*cli, command], cwd=ROOT, env=fleet.env, capture_output=True, text=True,
                                      check=False)
                if done.returncode != 0:
                    raise SystemExit(f"backfill {command} failed:\n{done.stdout}\n{done.stderr}")
                if command == "customers":
                    wait_idle(client, prefix, 3600)
            client.close()
            # the summary's count: the last one printed (the progress bar's description counts as it goes)
            counts = re.findall(r"(\d[\d,]*)\s+events\s+queued", done.stdout)  # rich may wrap the line there
            queued = int(counts[-1].replace(",", "")) if counts else 0
            last = [-1, time.monotonic()]

            def settled() -> bool:
                stored = int(sandbox.stats()["events_stored"])
                if stored != last[0]:
                    last[:] = [stored, time.monotonic()]
                return stored >= queued or time.monotonic() - last[1] > settle_seconds

            wait_for(settled, 6 * 3600, 2.0, "every backfilled event in Klaviyo")
            stats = sandbox.stats()
            return BackfillJobs({int(k): int(v) for k, v in stats["bulk_event_job_sizes"].items()}, queued,
                                int(stats["events_stored"]))
    finally:
        sandbox.stop()
        bc.stop()


# --- report ---------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def markdown(args: argparse.Namespace, result: BudgetResult | None, cpu: dict[str, tuple[float, float]],
             jobs: BackfillJobs | None) -> str:
    mark = args.block or (f"{MARK} background {args.background_share:g}" if args.background_share else MARK)
    lines = [f"<!-- {mark} -->", "", f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
             f"(load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}), "
             f"`python -m bench.budget {' '.join(sys.argv[1:])}`.", ""]
    if result is not None:
        lines += [f"Load on all four families at once for {result.minutes:.1f} minute(s) after the first, Klaviyo's "
                  f"real limits, background consumer {result.background_share:.0%} of every window:", "",
                  "| family | units/min | requests/min | ceiling/min | share of ceiling | 429s per 1,000 requests |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in result.rows:
            lines.append(f"| {r.family} | {r.units_per_minute:,.0f} {r.unit} | {r.requests_per_minute:,.1f} | "
                         f"{r.ceiling_per_minute:,} | {r.share:.1%} | {r.throttled_per_1000:.2f} |")
        lines += ["", f"Fast lane under that load (hand-off to Klaviyo's answer, {len(result.fast_latencies)} "
                  f"events, the poll interval comes on top): p50 {fmt(result.fast_percentile(0.5), 2, ' s')}, "
                  f"p99 {fmt(result.fast_percentile(0.99), 2, ' s')}, max {fmt(result.fast_percentile(1.0), 2, ' s')}.",
                  ""]
        if result.recovery is not None:
            lines += recovery_lines(result.recovery)
    if cpu:
        lines += ["| single events, one default worker | worker + Redis CPU per event | events/min |",
                  "|---|---:|---:|"]
        for name, (ms, rate) in cpu.items():
            lines.append(f"| {name} | {ms:.2f} ms | {rate:,.0f} |")
        lines += ["", f"Worker and Redis CPU: less what the started fleet spent a second idle, watched for "
                  f"{IDLE_SECONDS:g} s before the events."]
        if getattr(args, "yardstick", None):
            lines += ["", f"Before the runs: {describe(args.yardstick)}."]
        if len(cpu) == 2:
            real, free = cpu["Klaviyo's real limits"][0], cpu["unlimited"][0]
            lines.append(f"\nAt real limits the CPU per single event is {real / free:.2f}x the unlimited figure.")
        limited, free_run = cpu.get("Klaviyo's real limits"), cpu.get("unlimited")
        if limited is not None:
            # N events need at least N / ceiling - 1 whole minutes whatever the windows' phase: more than two
            # minutes' worth cannot all go in the first window, so the limiter made them wait
            many = getattr(args, "cpu_events", 0) > 2 * SINGLE_CEILING
            bound = many or (free_run is not None and limited[1] < free_run[1] / 2)
            said = ("so the limit bound (the rate is over more than the ceiling because the run starts with a whole "
                    "window's budget and ends part-way into its last window)" if bound else
                    "the run fit in the first window's budget and the limit never bound; raise --cpu-events")
            lines.append(f"At real limits the events went at {limited[1]:,.0f}/min against Klaviyo's "
                         f"{SINGLE_CEILING:,}/min, {said}.")
        lines.append("")
    if jobs and not jobs.sizes:
        lines += [f"Order backfill of {args.orders:,} orders: no bulk event job stored ({jobs.stored:,} of the "
                  f"{jobs.queued:,} events it queued stored when counted).", ""]
    if jobs and jobs.sizes:
        total = sum(jobs.sizes.values())
        full = jobs.sizes.get(1000, 0)
        sizes = ", ".join(f"{size}: {n}" for size, n in sorted(jobs.sizes.items(), reverse=True)[:8])
        lines += [f"Order backfill of {args.orders:,} orders ({jobs.stored:,} of the {jobs.queued:,} events it queued "
                  f"stored when counted): {total:,} bulk event jobs, {full:,} of them with 1,000 events "
                  f"({full / total:.1%}); events per job -> jobs: {sizes}.", ""]
    lines.append(f"<!-- /{mark} -->")
    return "\n".join(lines)


def recovery_lines(recovery: Recovery) -> list[str]:
    climbed = recovery.climbed()
    said = (f"every family was above 90% of its ceiling {climbed:.0f} s after the stop"
            if climbed is not None else f"not every family reached 90% of its ceiling within {RECOVERY_SECONDS:g} s")
    lines = [f"Then the background consumer stopped: {said} (share over the trailing {RECOVERY_WINDOW:g} s, "
             f"sampled every 5 s; the first sample can only be {RECOVERY_WINDOW:g} s after the stop).", "",
             "| seconds after the stop | " + " | ".join(recovery.samples[0][1]) + " |" if recovery.samples else "",
             "|---:|" + "---:|" * (len(recovery.samples[0][1]) if recovery.samples else 0)]
    for t, shares in recovery.samples[::3]:
        lines.append(f"| {t:.0f} | " + " | ".join(f"{share:.0%}" for share in shares.values()) + " |")
    return [*lines, ""]


def write_block(path: Path, block: str) -> None:
    """Replace the block with the same opening marker in `path` (append it when there is none)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    begin = block.splitlines()[0]
    end = begin.replace("<!-- ", "<!-- /", 1)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5, help="load counted after the first minute")
    parser.add_argument("--background-share", type=float, default=0.0,
                        help="the sandbox's background consumer: this part of every window is another integration's")
    parser.add_argument("--profile-rows", type=int, default=1000, help="profiles per bulk import job")
    parser.add_argument("--variants", type=int, default=3000, help="catalog variants the stock updates cycle over")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes of the default and batch workers")
    parser.add_argument("--cpu-events", type=int, default=8000,
                        help="single events per CPU run (0 skips); more than a minute's 3,500 so the limit binds")
    parser.add_argument("--orders", type=int, default=0, help="orders of the backfill part (0 skips)")
    parser.add_argument("--skip-budget", action="store_true", help="only the CPU and backfill parts")
    parser.add_argument("--write", type=Path, help="put the markdown block into this file")
    parser.add_argument("--block", help="the block's marker name (default: bench.budget, with the background share "
                                        "when there is one)")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    result: BudgetResult | None = None
    cpu: dict[str, tuple[float, float]] = {}
    jobs: BackfillJobs | None = None
    try:
        with ExitStack() as stack:
            def fresh_redis() -> PrivateRedis:
                server = PrivateRedis.start()
                stack.callback(server.stop)
                return server

            if not args.skip_budget:
                console.print("part 1: the budget at Klaviyo's real numbers")
                result = budget(fresh_redis(), args.minutes, args.profile_rows, args.variants,
                                args.background_share, args.concurrency)
                console.print(markdown(args, result, cpu, jobs), markup=False, highlight=False)
            if args.cpu_events:
                # CPU milliseconds depend on the machine's state as much as on the code: said with the figures
                args.yardstick = yardstick_ms()
                for name, limits in (("Klaviyo's real limits", True), ("unlimited", False)):
                    console.print(f"part 2: CPU per single event, {name}")
                    try:
                        cpu[name] = cpu_per_event(fresh_redis(), args.cpu_events, limits)
                    except AssertionError as exc:  # a run that never finished: said so, the others still count
                        console.print(f"[red]  {name}: {exc}")
                    else:
                        console.print(f"  {cpu[name][0]:.2f} ms worker + Redis CPU per event, {cpu[name][1]:,.0f}/min")
            if args.orders:
                console.print(f"part 3: an order backfill of {args.orders:,} orders")
                jobs = backfill_jobs(fresh_redis(), args.orders)
    except KeyboardInterrupt:
        console.print("[red]interrupted: every process stopped")
        return 130
    block = markdown(args, result, cpu, jobs)
    console.print(block, markup=False, highlight=False)
    if args.write:
        write_block(args.write, block)
        console.print(f"written to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
