"""`bcsync backfill orders [--since DATE] [--dry-run [--verbose]]`: historical order events, with `backfill: true`.

Reads from Blue Cherry through the connector, resource by resource: first the pick tickets, invoices and
credit memos (into the order state, so each order finds its documents), then the orders, page by page,
computing each order's desired events with ``backfill=True`` (no flow fires) and sending them on the batch
lane through Klaviyo's bulk events API (1000 events per job, via the order flow's bulk buffer); last, the
ERP aggregates of every profile touched, as bulk profile imports. The ledger makes a rerun send nothing new.

Per page of up to 200 records, not per order: documents are stored with `put_documents` and orders brought
up to date with `sync_orders` (one state read, one ledger read, one write pipeline and one bulk-buffer push
for the whole page), aggregates are computed 200 profiles at a time.

Resumable: after each page the resource's checkpoint (the last `last_mod` read, tenant-local) is stored in
Redis (``<prefix>:backfill:orders:<resource>``); an interrupted run continues from it (records of that
second are read again: harmless, the ledger de-duplicates). ``--restart`` forgets the checkpoints.
A Typer app named `app` with the command `orders`
(register with ``app.add_typer(backfill_orders.app, name="backfill")``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from config.mapping import Mapping, get_mapping
from config.settings import get_settings
from connectors.bluecherry.client import BlueCherryClient
from delivery.publish import submit
from delivery.runtime import runtime
from flows.order_refunds import KlaviyoRefunds
from flows.orders import OrderContext, flush_bulk_buffer, refresh_profiles, sync_orders
from state.keys import RedisKeys
from state.order_facts import OrderFactsStore
from sync.operations import Operation
from sync.orders.lifecycle import profile_key
from workers.dry_run import DryRun

log = logging.getLogger("bcsync.backfill")
console = Console()
app = typer.Typer(help="Historical backfills into Klaviyo (no flows fire).", no_args_is_help=True)
DOCUMENT_RESOURCES = ("pick", "invoice", "creditmemo")
AGGREGATE_CHUNK = 200


# A callback keeps `orders` / `order` a subcommand even while it is the only one.
@app.callback()
def _group() -> None:
    """Historical backfills into Klaviyo (no flows fire)."""


@dataclass
class BackfillStats:
    documents: int = 0
    orders: int = 0
    events: int = 0
    profiles: int = 0
    excluded: int = 0
    problems: int = 0
    by_metric: dict[str, int] = field(default_factory=dict)


class CountingSubmit:
    """Wraps the real submit (None for --dry-run) and counts what goes out (a dry run: into `would` too)."""

    def __init__(self, submit: object | None, stats: BackfillStats, would: DryRun | None = None) -> None:
        self.submit = submit
        self.stats = stats
        self.would = would

    def __call__(self, ops: list[Operation]) -> None:
        for op in ops:
            if op.kind == "event":
                self.stats.events += 1
                metric = str(op.payload["metric"])
                self.stats.by_metric[metric] = self.stats.by_metric.get(metric, 0) + 1
            else:
                self.stats.profiles += 1
        if self.would is not None:
            self.would.operations(ops)
        if self.submit is not None:
            self.submit(ops)  # type: ignore[operator]


def checkpoint_key(ctx: OrderContext, resource: str) -> str:
    return RedisKeys(ctx.key_prefix).order_backfill(resource)


def run_backfill(ctx: OrderContext, client: BlueCherryClient, since: str | None, *, dry_run: bool = False,
                 progress: Progress | None = None, would: DryRun | None = None) -> BackfillStats:
    """Backfill every order (and its documents) changed since `since` (tenant-local); see the module doc.
    A dry run sends nothing; `would` (if given) collects what it would send."""
    stats = BackfillStats()
    real_submit = ctx.submit
    counting = CountingSubmit(None if dry_run else real_submit, stats, would if dry_run else None)
    ctx.submit = counting
    try:
        task = progress.add_task("documents", total=None) if progress else None
        for resource in DOCUMENT_RESOURCES:
            for page in _pages(ctx, client, resource, since, dry_run):
                ctx.state.put_documents(resource, page, "backfill")
                stats.documents += len(page)
                if progress is not None and task is not None:
                    progress.update(task, advance=len(page), description=f"documents ({resource})")
        task = progress.add_task("orders", total=None) if progress else None
        for page in _pages(ctx, client, "order", since, dry_run):
            _order_page(ctx, page, stats)
            if progress is not None and task is not None:
                progress.update(task, advance=len(page),
                                description=f"orders ({stats.events} events queued)")
        flush_bulk_buffer(ctx, drain=True)  # every event is queued: their tails wait for nothing more
        _aggregates(ctx, progress)
        flush_bulk_buffer(ctx, drain=True)  # the run is over: the aggregates' tails wait for nothing more
    finally:
        ctx.submit = real_submit
    if not dry_run:
        ctx.redis.delete(*[checkpoint_key(ctx, r) for r in (*DOCUMENT_RESOURCES, "order")],
                         RedisKeys(ctx.key_prefix).backfill_profiles_touched)
    return stats


def _pages(ctx: OrderContext, client: BlueCherryClient, resource: str, since: str | None,
           dry_run: bool) -> Iterator[list[dict[str, Any]]]:
    """Pages of `resource` from its checkpoint (or `since`); stores the checkpoint after each page."""
    res = getattr(ctx.mapping.resources, resource)
    start = ctx.redis.get(checkpoint_key(ctx, resource)) or since
    done = ctx.redis.get(checkpoint_key(ctx, resource) + ":done")
    if done:
        return
    for page in client.iter_pages(res, start, read_ahead=True):
        yield page
        if page and not dry_run:
            ctx.redis.set(checkpoint_key(ctx, resource), str(page[-1].get(res.last_mod)))
    if not dry_run:
        ctx.redis.set(checkpoint_key(ctx, resource) + ":done", "1")


def _order_page(ctx: OrderContext, page: list[dict[str, Any]], stats: BackfillStats) -> None:
    """One page of order headers: stored, then every order brought up to date in one batch (a few Redis
    round trips for the whole page); the profiles they count for are remembered for the aggregates."""
    numbers = ctx.state.put_documents("order", page, "backfill")
    planned = sync_orders([n for n in numbers if n is not None], ctx, backfill=True)
    profiles: set[str] = set()
    for number in numbers:
        stats.orders += 1
        plan = planned.get(number) if number is not None else None
        if plan is None or plan.result.problems:
            stats.problems += 1
        elif plan.result.excluded is not None:
            stats.excluded += 1
        elif (key := profile_key(plan.docs.order, ctx.mapping)) is not None:
            profiles.add(key)
    if profiles:
        ctx.redis.sadd(RedisKeys(ctx.key_prefix).backfill_profiles_touched, *profiles)


def _aggregates(ctx: OrderContext, progress: Progress | None) -> None:
    """ERP aggregates of every profile whose orders were backfilled, once per profile, on the batch lane,
    in chunks of `AGGREGATE_CHUNK` profiles."""
    touched = RedisKeys(ctx.key_prefix).backfill_profiles_touched
    task = progress.add_task("profile aggregates", total=ctx.redis.scard(touched)) if progress else None
    keys = sorted(str(k) for k in ctx.redis.sscan_iter(touched, count=1000))
    for start in range(0, len(keys), AGGREGATE_CHUNK):
        chunk = keys[start:start + AGGREGATE_CHUNK]
        refresh_profiles(chunk, ctx, lane="batch")
        if progress is not None and task is not None:
            progress.update(task, advance=len(chunk))
    for resource in (*DOCUMENT_RESOURCES, "order"):
        ctx.redis.delete(checkpoint_key(ctx, resource) + ":done")


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(value, fmt).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS')",
                             param_hint="--since")


def cli_context(mapping: Mapping | None = None) -> OrderContext:
    rt = runtime()
    settings = get_settings()
    mapping = mapping or get_mapping()
    return OrderContext(
        rt.redis, settings.key_prefix, mapping,
        rt.stores.orders,
        rt.ledger, rt.exceptions, submit, buffer=RedisKeys(settings.key_prefix).backfill_bulk_buffer,
        bulk_max_wait_seconds=settings.bulk_max_wait_seconds,
        lock_seconds=settings.order_lock_seconds, lock_wait_seconds=settings.order_lock_wait_seconds,
        # an order read with its credit memos: which went under which refund id is asked of Klaviyo
        recover_refunds=KlaviyoRefunds(rt.client("batch"), rt.stores.profiles, mapping, rt.exceptions,
                                       OrderFactsStore(rt.redis, settings.key_prefix)),
    )


@app.command("orders")
def backfill_orders(
    since: Annotated[str | None, typer.Option(help="tenant-local date: changed since (default: all)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="compute and summarise, send nothing")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="with --dry-run: every operation as a JSON line")]
    = False,
    restart: Annotated[bool, typer.Option("--restart", help="forget an earlier run's checkpoints")] = False,
) -> None:
    """Send historical order events with backfill=true (no flows) on the batch lane; resumable."""
    start = _since(since)
    ctx = cli_context()
    if restart:
        keys = [checkpoint_key(ctx, r) + s for r in (*DOCUMENT_RESOURCES, "order") for s in ("", ":done")]
        ctx.redis.delete(*keys)
    client = BlueCherryClient.from_settings(get_settings(), ctx.mapping)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} records"),
               TimeElapsedColumn())
    would = DryRun(verbose=verbose, echo=typer.echo)
    # with --verbose a dry run's stdout carries the operations: progress and summary go to stderr
    out = Console(stderr=True) if dry_run and verbose else console
    try:
        with Progress(*columns, console=out) as progress:
            stats = run_backfill(ctx, client, start, dry_run=dry_run, progress=progress, would=would)
    finally:
        client.close()  # also on an error: a page still being read ahead then ends at its next attempt
    verb = "computed (dry run, nothing sent)" if dry_run else "queued on the batch lane"
    out.print(f"{stats.orders} orders, {stats.documents} documents: {stats.events} events {verb}, "
              f"{stats.profiles} aggregate profiles, {stats.excluded} excluded, "
              f"{stats.problems} with problems")
    for metric, count in sorted(stats.by_metric.items()):
        out.print(f"  {metric}: {count}")
    if dry_run:
        would.print(out)
