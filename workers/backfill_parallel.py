"""`bcsync backfill orders|customers --workers N`: a backfill split by `last_mod` across N processes, resumable.

The range (``--since``, else the oldest record's `last_mod`, up to the run's start; the last slice open-ended) is cut
into ``N x SLICES_PER_WORKER`` slices of equal time (more slices than processes, so a busy stretch of history does
not leave the other processes idle); the plan is kept in Redis (``<prefix>:backfill:orders:plan``) so a resumed run
reads exactly the same slices, whatever ``--workers`` it is given. The phases are those of the one-process run
(`workers.backfill_orders`), each over every slice before the next begins - an order's documents must all be stored
before any order is computed, since a slice holds an order's header and its documents by their own dates:

1. pick tickets, invoices, credit memos of every slice: stored (`put_documents`);
2. the orders of every slice: computed a page at a time (`sync_orders`, ``backfill=True``) and queued;
3. the aggregates of every profile touched, from the orders' durable facts (`refresh_profiles`: no document is
   read again), in chunks of 200 profiles;
4. the backfill bulk buffer drained after the orders (the events' tails leave then, not after the aggregates,
   which go to another endpoint) and again at the end.

Resumable: each slice of each resource keeps its cursor in Redis (``<prefix>:backfill:orders:<resource>:slice:<i>``:
the last `last_mod` whose page is done, and ``:done``), so a killed run continues every slice where it stopped
(the records of the cursor's second are read again: the ledger and the computed state make that harmless).
``--restart`` forgets the plan and the cursors. Processes are spawned (each builds its own Redis and HTTP
clients); the parent shows one progress bar per phase with the events queued per minute and their share of
Klaviyo's bulk ceiling (the bulk events endpoint's steady limit x 1,000 events a job).

Customers (`run_customers_parallel`) are cut into slices the same way (plan ``<prefix>:backfill:customers:plan``);
each slice is a `workers.backfill_customers.CustomerBackfill` with its own checkpoint
(``<prefix>:backfill:customers:slice:<i>``, the last `last_mod` queued and the pkeys of that second) below the
slice's end, so a killed run resumes every slice; the bar shows profiles per minute against the bulk profile
import ceiling (its steady limit x 10,000 profiles a job).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from config.collector import set_up_collector
from config.mapping import get_mapping
from config.settings import get_settings
from connectors.bluecherry.client import BlueCherryClient
from connectors.klaviyo.endpoints import endpoint
from connectors.klaviyo.limits import MAX_BULK_EVENTS, MAX_BULK_PROFILES
from flows.customers import CustomerContext
from flows.orders import OrderContext, flush_bulk_buffer, refresh_profiles
from state.keys import RedisKeys
from sync.localtime import read_erp_datetime
from sync.operations import Operation
from workers.backfill_customers import BackfillStats as CustomerStats
from workers.backfill_customers import CustomerBackfill
from workers.backfill_customers import cli_context as customer_cli_context
from workers.backfill_orders import AGGREGATE_CHUNK, DOCUMENT_RESOURCES, BackfillStats, _order_page, cli_context

SLICES_PER_WORKER = 4
STAMP = "%Y-%m-%d %H:%M:%S"  # tenant-local, as --since and the $filter take it
COUNTERS = ("documents", "orders", "events", "profiles", "excluded", "problems")


def bulk_ceiling_per_minute() -> int:
    """Klaviyo's bulk event ceiling: bulk create jobs a minute (steady limit) x events a job."""
    return endpoint("event-bulk-create-jobs").tier.steady * MAX_BULK_EVENTS


@dataclass(frozen=True)
class Slice:
    """`last_mod` in [start, end) (tenant-local; None: unbounded on that side)."""

    index: int
    start: str | None
    end: str | None


def plan_slices(first: dt.datetime, last: dt.datetime, count: int, since: str | None) -> list[Slice]:
    """`count` slices of equal time from `first` to `last`; the first starts at `since` (None: everything before),
    the last is open-ended (records changed while the backfill runs are read too)."""
    count = max(1, count)
    step = max((last - first) / count, dt.timedelta(seconds=1))
    bounds = [(first + step * i).strftime(STAMP) for i in range(1, count)]
    bounds = sorted(set(bounds))
    starts: list[str | None] = [since, *bounds]
    ends: list[str | None] = [*bounds, None]
    return [Slice(i, s, e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))]


def _plan_key(ctx: OrderContext) -> str:
    return RedisKeys(ctx.key_prefix).order_backfill("plan")


def _cursor_key(ctx: OrderContext, resource: str, index: int) -> str:
    return RedisKeys(ctx.key_prefix).order_backfill(f"{resource}:slice:{index}")


def _progress_key(ctx: OrderContext) -> str:
    return RedisKeys(ctx.key_prefix).order_backfill("progress")


def load_or_plan(ctx: OrderContext | CustomerContext, client: BlueCherryClient, since: str | None, workers: int,
                 plan_key: str, resources: tuple[str, ...]) -> list[Slice]:
    """The stored plan of an interrupted run, else a new one (stored)."""
    raw = ctx.redis.get(plan_key)
    if raw:
        return [Slice(i, s, e) for i, (s, e) in enumerate(json.loads(raw)["slices"])]
    zone = ZoneInfo(ctx.mapping.tenant.timezone)
    now = dt.datetime.now(zone).replace(tzinfo=None)
    first = dt.datetime.strptime(since, STAMP) if since else _oldest(ctx, client, resources) or now
    slices = plan_slices(first, now, workers * SLICES_PER_WORKER, since)
    ctx.redis.set(plan_key, json.dumps({"slices": [[s.start, s.end] for s in slices], "workers": workers}))
    return slices


def _oldest(ctx: OrderContext | CustomerContext, client: BlueCherryClient,
            resources: tuple[str, ...]) -> dt.datetime | None:
    """The oldest `last_mod` of `resources` (bcapi lists by last_mod)."""
    found: list[dt.datetime] = []
    for resource in resources:
        res = getattr(ctx.mapping.resources, resource)
        page = next(client.iter_pages(res, None, include_children=False, page_size=1), [])
        for record in page:
            try:
                found.append(read_erp_datetime(str(record.get(res.last_mod)), ctx.mapping.date_formats(resource))
                             .replace(tzinfo=None))
            except ValueError:
                continue  # unreadable: the poller reports it; the first slice starts at the beginning anyway
    return min(found) if found else None


def forget(ctx: OrderContext) -> None:
    """The plan, every slice's cursor and the progress counters (a finished run, or --restart)."""
    keys = [k for k in ctx.redis.scan_iter(RedisKeys(ctx.key_prefix).order_backfill("*:slice:*"), count=1000)]
    ctx.redis.delete(_plan_key(ctx), _progress_key(ctx), *keys)


# --- in each process --------------------------------------------------------------------------------

_PROCESS: dict[str, Any] = {}


def counted(ctx: OrderContext) -> OrderContext:
    """The context with its submit counting what it queues into the run's progress counters (Redis: every
    process adds to the same ones)."""
    real = ctx.submit

    def submit(ops: list[Operation]) -> None:
        real(ops)
        events = sum(1 for op in ops if op.kind == "event")
        pipe = ctx.redis.pipeline(transaction=False)
        pipe.hincrby(_progress_key(ctx), "events", events)
        pipe.hincrby(_progress_key(ctx), "profiles", len(ops) - events)
        pipe.execute()
    ctx.submit = submit
    return ctx


def _set_up_spawned_process() -> None:
    """A spawned process runs no `bcsync` command's set-up: the collector is set here, once its modules are
    imported (with Python's defaults a backfill reader spends about 15% of its CPU collecting)."""
    set_up_collector(get_settings().gc_young_threshold)


def process_pool(workers: int) -> Any:
    """`workers` spawned processes (each builds its own Redis and HTTP clients), set up as a bcsync process."""
    return multiprocessing.get_context("spawn").Pool(workers, initializer=_set_up_spawned_process)


def _process() -> tuple[OrderContext, BlueCherryClient]:
    """This process's context and Blue Cherry client (built once: a spawned process starts empty)."""
    if not _PROCESS:
        ctx = counted(cli_context())
        _PROCESS["ctx"] = ctx
        _PROCESS["client"] = BlueCherryClient.from_settings(get_settings(), ctx.mapping)
    return _PROCESS["ctx"], _PROCESS["client"]


def _slice_pages(ctx: OrderContext, client: BlueCherryClient, resource: str,
                 piece: Slice) -> Iterable[list[dict[str, Any]]]:
    """The slice's pages from its cursor; the cursor moves after each page is done (the caller's loop body)."""
    res = getattr(ctx.mapping.resources, resource)
    key = _cursor_key(ctx, resource, piece.index)
    if ctx.redis.get(key + ":done"):
        return
    start = ctx.redis.get(key) or piece.start
    upper = f"{res.last_mod} lt '{piece.end}'" if piece.end else None
    for page in client.iter_pages(res, start, extra_filter=upper, read_ahead=True):
        yield page
        if page:
            ctx.redis.set(key, str(page[-1].get(res.last_mod)))
    ctx.redis.set(key + ":done", "1")


def documents_slice(job: tuple[str, Slice]) -> int:
    resource, piece = job
    ctx, client = _process()
    stored = 0
    for page in _slice_pages(ctx, client, resource, piece):
        ctx.state.put_documents(resource, page, "backfill")
        stored += len(page)
        ctx.redis.hincrby(_progress_key(ctx), "documents", len(page))
    return stored


def orders_slice(piece: Slice) -> int:
    ctx, client = _process()
    done = 0
    for page in _slice_pages(ctx, client, "order", piece):
        stats = BackfillStats()
        _order_page(ctx, page, stats)
        done += len(page)
        pipe = ctx.redis.pipeline(transaction=False)
        for name in ("orders", "excluded", "problems"):
            pipe.hincrby(_progress_key(ctx), name, getattr(stats, name))
        pipe.execute()
    return done


def aggregates_chunk(profiles: list[str]) -> int:
    ctx, _ = _process()
    refresh_profiles(profiles, ctx, lane="batch")  # from the durable facts: no document is read again
    return len(profiles)


# --- the parent -------------------------------------------------------------------------------------


def run_parallel(since: str | None, workers: int, *, restart: bool = False,
                 console: Console | None = None) -> BackfillStats:
    """The whole backfill in `workers` processes (see the module doc); returns the counts of this run and the
    runs it resumed."""
    out = console or Console()
    ctx = counted(cli_context(get_mapping()))
    if restart:
        forget(ctx)
        ctx.redis.delete(RedisKeys(ctx.key_prefix).backfill_profiles_touched)
    client = BlueCherryClient.from_settings(get_settings(), ctx.mapping)
    try:
        slices = load_or_plan(ctx, client, since, workers, _plan_key(ctx), (*DOCUMENT_RESOURCES, "order"))
    finally:
        client.close()
    ceiling = bulk_ceiling_per_minute()
    started = time.monotonic()
    timings: list[str] = []  # each phase's time, for the summary: which one bounds a run
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[rate]}"))
    with process_pool(workers) as pool, Progress(*columns, console=out) as progress:
        def rate() -> str:
            events = int(ctx.redis.hget(_progress_key(ctx), "events") or 0)
            per_minute = events / max(time.monotonic() - started, 1e-9) * 60
            return f"{events:,} events, {per_minute:,.0f}/min = {per_minute / ceiling:.1%} of the bulk ceiling"

        def phase(name: str, fn: Callable[[Any], int], jobs: list[Any]) -> None:
            phase_started = time.monotonic()
            task = progress.add_task(name, total=len(jobs), rate="")
            pending = pool.map_async(fn, jobs, chunksize=1)
            done_before = 0
            while not pending.ready():
                pending.wait(0.5)
                done_before = _slices_done(ctx, name, jobs, done_before)
                progress.update(task, completed=done_before, rate=rate())
            pending.get()  # a process's error ends the run here (the cursors keep what was done)
            progress.update(task, completed=len(jobs), rate=rate())
            timings.append(f"{name.split(' (')[0]} {time.monotonic() - phase_started:.1f} s")

        phase(f"documents ({len(slices)} slices x {len(DOCUMENT_RESOURCES)})", documents_slice,
              [(resource, piece) for resource in DOCUMENT_RESOURCES for piece in slices])
        phase(f"orders ({len(slices)} slices)", orders_slice, slices)
        flush_bulk_buffer(ctx, drain=True)  # every event is queued: their tails leave now, not after the aggregates
        touched = RedisKeys(ctx.key_prefix).backfill_profiles_touched
        keys = sorted(str(k) for k in ctx.redis.sscan_iter(touched, count=1000))
        phase("profile aggregates (chunks of 200)", aggregates_chunk,
              [keys[i:i + AGGREGATE_CHUNK] for i in range(0, len(keys), AGGREGATE_CHUNK)])
    flush_bulk_buffer(ctx, drain=True)  # the run is over: the aggregates' tails wait for nothing more
    counts = ctx.redis.hgetall(_progress_key(ctx))
    stats = BackfillStats()
    for name in COUNTERS:
        setattr(stats, name, int(counts.get(name) or 0))
    elapsed = time.monotonic() - started
    out.print(f"{workers} processes, {len(slices)} slices: {stats.events:,} events queued in {elapsed:.1f} s "
              f"({stats.events / max(elapsed, 1e-9) * 60:,.0f}/min, "
              f"{stats.events / max(elapsed, 1e-9) * 60 / ceiling:.1%} of the bulk ceiling of {ceiling:,}/min; "
              f"{', '.join(timings)})")
    forget(ctx)
    ctx.redis.delete(touched)
    return stats


def _slices_done(ctx: OrderContext, name: str, jobs: list[Any], before: int) -> int:
    """How many of the phase's slices are done (their cursors' done marks); aggregates count as they end."""
    if name.startswith("profile"):
        return before
    pipe = ctx.redis.pipeline(transaction=False)
    for job in jobs:
        resource, piece = job if isinstance(job, tuple) else ("order", job)
        pipe.exists(_cursor_key(ctx, resource, piece.index) + ":done")
    return sum(int(x) for x in pipe.execute())


# --- customers ----------------------------------------------------------------------------------------

CUSTOMER_COUNTERS = ("read", "pages", "profiles", "subscribes", "problems", "conflicts", "skipped")


def _customer_key(ctx: CustomerContext, suffix: str) -> str:
    return f"{RedisKeys(ctx.key_prefix).customer_backfill}:{suffix}"


def bulk_profile_ceiling_per_minute() -> int:
    """Klaviyo's bulk profile import ceiling: jobs a minute (steady limit) x profiles a job."""
    return endpoint("profile-bulk-import-jobs").tier.steady * MAX_BULK_PROFILES


def customers_slice(job: tuple[Slice, int]) -> int:
    """One slice of `bcsync backfill customers --workers N`: `CustomerBackfill` from the slice's own checkpoint,
    below the slice's end; marked done once all of it is queued."""
    piece, chunk = job
    if "customers" not in _PROCESS:
        _PROCESS["customers"] = customer_cli_context()
        _PROCESS["customers_client"] = BlueCherryClient.from_settings(get_settings(), _PROCESS["customers"].mapping)
    ctx: CustomerContext = _PROCESS["customers"]
    key = _customer_key(ctx, f"slice:{piece.index}")
    if ctx.redis.get(key + ":done"):
        return 0
    seen = CustomerStats()

    def count(stats: CustomerStats) -> None:  # each page's progress into the run's counters
        pipe = ctx.redis.pipeline(transaction=False)
        for name in CUSTOMER_COUNTERS:
            pipe.hincrby(_customer_key(ctx, "progress"), name, getattr(stats, name) - getattr(seen, name))
            setattr(seen, name, getattr(stats, name))
        pipe.execute()

    runner = CustomerBackfill(ctx, _PROCESS["customers_client"], chunk=chunk, progress=count, key=key,
                              until=piece.end)
    count(runner.run(piece.start))
    ctx.redis.set(key + ":done", "1")
    return seen.read


def run_customers_parallel(since: str | None, workers: int, *, chunk: int, restart: bool = False,
                           console: Console | None = None) -> CustomerStats:
    """`bcsync backfill customers --workers N`: the customers' range cut into slices as the orders' (see the module
    doc), each slice a `CustomerBackfill` of its own in one of `workers` spawned processes, resumable per slice."""
    out = console or Console()
    ctx = customer_cli_context()
    plan_key, progress_key = _customer_key(ctx, "plan"), _customer_key(ctx, "progress")
    if restart:
        slices_keys = list(ctx.redis.scan_iter(_customer_key(ctx, "slice:*"), count=1000))
        ctx.redis.delete(plan_key, progress_key, *slices_keys)
    with BlueCherryClient.from_settings(get_settings(), ctx.mapping) as client:
        slices = load_or_plan(ctx, client, since, workers, plan_key, ("customer",))
    ceiling = bulk_profile_ceiling_per_minute()
    started = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[rate]}"))
    with process_pool(workers) as pool, Progress(*columns, console=out) as progress:
        task = progress.add_task(f"customers ({len(slices)} slices)", total=len(slices), rate="")
        pending = pool.map_async(customers_slice, [(piece, chunk) for piece in slices], chunksize=1)
        while True:
            pending.wait(0.5)
            profiles = int(ctx.redis.hget(progress_key, "profiles") or 0)
            per_minute = profiles / max(time.monotonic() - started, 1e-9) * 60
            done = sum(1 for piece in slices if ctx.redis.exists(_customer_key(ctx, f"slice:{piece.index}:done")))
            progress.update(task, completed=done, rate=f"{profiles:,} profiles, {per_minute:,.0f}/min = "
                            f"{per_minute / ceiling:.1%} of the bulk import ceiling")
            if pending.ready():
                break
        pending.get()  # a process's error ends the run here (each slice's checkpoint keeps what was done)
    counts = ctx.redis.hgetall(progress_key)
    totals = CustomerStats()
    for name in CUSTOMER_COUNTERS:
        setattr(totals, name, int(counts.get(name) or 0))
    ctx.redis.delete(plan_key, progress_key, *ctx.redis.scan_iter(_customer_key(ctx, "slice:*"), count=1000))
    return totals
