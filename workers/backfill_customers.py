"""`bcsync backfill customers [--since DATE] [--dry-run] [--restart]`: the customer master into Klaviyo.

Reads the customers from Blue Cherry through the connector (``last_mod ge --since``), and for every valid
one sends the full profile on the batch lane - delivery packs them into bulk profile imports - plus its ERP
consent as on a first sync: subscribes only on explicit consent, under the consent guard (a newer Klaviyo
unsubscribe or suppression wins and becomes a `consent_conflict`), with `historical_import` and
`consented_at` when `mapping.consent.historical_import` says so (sync.customers.planner.plan_backfill).
Malformed customers go to the exception register; catch-all accounts, customers flagged for deletion and
erased customers are skipped. Versions are ``<last_mod UTC>#000000``: anything the poller delivered from a
newer ERP state wins over the backfill in the ledger, and a rerun sends nothing the ledger already holds.

Resumable: records are sent in chunks (``--chunk``, default 1000 profiles); only after a chunk is on the queue
is the checkpoint stored in Redis (``<prefix>:backfill:customers``: the last `last_mod` done and the pkeys
done at that second). An interrupted run resumes from it (``last_mod ge`` that second, skipping the pkeys
done); a finished run deletes it; ``--restart`` forgets it. It assumes bcapi lists by `last_mod` (as the
reference and the sandbox do). A record modified while the backfill runs is the poller's business: it has
a new `last_mod` inside the poller's window.

``--dry-run`` reads Blue Cherry (and Klaviyo's consent, for the guard) and prints a summary of what it would send
(operations per kind and lane, a few samples of each) and the problems it would record (per type, with examples);
``--verbose`` adds every operation as a JSON line on stdout. It sends, records and stores nothing.
Register with ``app.command("customers")(backfill_customers.backfill_customers)`` on the `backfill` app.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from config.settings import get_settings
from connectors.bluecherry.client import BlueCherryClient
from delivery.runtime import runtime
from flows.customers import CustomerContext, default_context, klaviyo_consent_lookup
from state.keys import RedisKeys
from sync.customers.planner import CustomerPlan, plan_backfill
from sync.fields import read_text
from sync.localtime import local_to_utc
from workers.backfill_orders import _since as parse_since  # the same --since rule for both backfills
from workers.dry_run import DryRun

log = logging.getLogger("bcsync.backfill")
console = Console()
CHUNK = 1000


@dataclass
class Checkpoint:
    """The resume point: the last `last_mod` (tenant-local) whose records are on the queue, and which."""

    last_mod: str | None = None
    pkeys: set[str] = field(default_factory=set)
    pages: int = 0
    sent: int = 0

    def covers(self, last_mod: str, pkey: str) -> bool:
        return self.last_mod is not None and (
            last_mod < self.last_mod or last_mod == self.last_mod and pkey in self.pkeys
        )

    def advance(self, last_mod: str, pkey: str) -> None:
        if self.last_mod is None or last_mod > self.last_mod:
            self.last_mod, self.pkeys = last_mod, {pkey}
        elif last_mod == self.last_mod:
            self.pkeys.add(pkey)

    def dump(self) -> str:
        return json.dumps({"last_mod": self.last_mod, "pkeys": sorted(self.pkeys), "pages": self.pages,
                           "sent": self.sent})

    @classmethod
    def load(cls, raw: str | None) -> Checkpoint:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(data.get("last_mod"), set(data.get("pkeys") or ()), int(data.get("pages", 0)),
                   int(data.get("sent", 0)))


@dataclass
class BackfillStats:
    read: int = 0
    pages: int = 0
    profiles: int = 0
    subscribes: int = 0
    problems: int = 0
    conflicts: int = 0
    skipped: int = 0
    resumed_from: str | None = None


def checkpoint_key(ctx: CustomerContext) -> str:
    return RedisKeys(ctx.key_prefix).customer_backfill


class CustomerBackfill:
    """One run: pages in, chunks out, the checkpoint after each chunk (see the module doc)."""

    def __init__(self, ctx: CustomerContext, client: BlueCherryClient, *, dry_run: bool = False,
                 chunk: int = CHUNK, echo: Callable[[str], None] = print,
                 progress: Callable[[BackfillStats], None] | None = None, verbose: bool = False,
                 key: str | None = None, until: str | None = None) -> None:
        self.ctx = ctx
        # one slice of a parallel run (workers/backfill_parallel.py): its own checkpoint, last_mod below `until`
        self.key = key or checkpoint_key(ctx)
        self.until = until
        self.client = client
        self.dry_run = dry_run
        self.would = DryRun(verbose=verbose, echo=echo)  # what a dry run would send and record
        self.chunk = max(1, chunk)
        self.echo = echo
        self.progress = progress
        self.stats = BackfillStats()
        self.resource = ctx.mapping.resources.customer
        self.zone = ZoneInfo(ctx.mapping.tenant.timezone)
        self._buffer: list[tuple[dict[str, Any], str]] = []

    def run(self, since: str | None) -> BackfillStats:
        saved = Checkpoint.load(self.ctx.redis.get(self.key))
        position = Checkpoint(saved.last_mod, set(saved.pkeys), saved.pages, saved.sent)
        self.stats.resumed_from = saved.last_mod
        start = saved.last_mod or since
        upper = f"{self.resource.last_mod} lt '{self.until}'" if self.until else None
        for page in self.client.iter_pages(self.resource, start, extra_filter=upper, read_ahead=True):
            self.stats.pages += 1
            position.pages += 1
            for record in page:
                self._take(record, saved, position)
            if len(self._buffer) >= self.chunk:
                self._flush(position)
            if self.progress is not None:
                self.progress(self.stats)
        self._flush(position)
        if not self.dry_run:
            self.ctx.redis.delete(self.key)
        return self.stats

    def _take(self, record: dict[str, Any], saved: Checkpoint, position: Checkpoint) -> None:
        f = self.ctx.mapping.fields.customer
        last_mod = str(record.get(self.resource.last_mod) or "")
        pkey = str(record.get(self.resource.key) or "")
        if saved.covers(last_mod, pkey):  # sent before the interruption
            return
        position.advance(last_mod, pkey)
        self.stats.read += 1
        code = read_text(record, f, "code")
        flagged = read_text(record, f, "delete_flag") in set(f.yes_values)
        if code in self.ctx.mapping.lifecycle.catch_all_customers or flagged:
            self.stats.skipped += 1
            return
        try:
            stamp = local_to_utc(last_mod, self.zone, self.ctx.mapping.date_formats("customer")).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            stamp = "0000-00-00T00:00:00Z"  # a bad last_mod: parse_customer reports the record's own problems
        version = f"{stamp}#000000"
        if code and self.ctx.tombstones.erased(code, version):
            self.stats.skipped += 1
            return
        self._buffer.append((record, version))

    def _flush(self, position: Checkpoint) -> None:
        batch, self._buffer = self._buffer, []
        plan = plan_backfill(batch, self.ctx.mapping, self.ctx.lookup) if batch else CustomerPlan()
        self._count(plan)
        if self.dry_run:
            self.would.operations(plan.operations)
            for problem in plan.problems:
                self.would.problem(problem.type, problem.record_key, problem.reason)
            return
        for problem in plan.problems:
            self.ctx.exceptions.record(problem.type, problem.record_key, problem.reason,
                                       severity=problem.severity,  # type: ignore[arg-type]
                                       details=problem.details)
        if plan.operations:
            self.ctx.submit(plan.operations)
        position.sent += len(plan.operations)
        # only now: everything up to `position` is on the queue
        self.ctx.redis.set(self.key, position.dump())

    def _count(self, plan: CustomerPlan) -> None:
        self.stats.profiles += sum(1 for op in plan.operations if op.kind == "profile_upsert")
        self.stats.subscribes += sum(1 for op in plan.operations if op.kind == "subscribe")
        self.stats.problems += sum(1 for p in plan.problems if p.type != "consent_conflict")
        self.stats.conflicts += sum(1 for p in plan.problems if p.type == "consent_conflict")


def cli_context() -> CustomerContext:
    """The worker's customer context, with the consent guard reading on the batch lane's budget."""
    ctx = default_context()
    ctx.lookup = klaviyo_consent_lookup(runtime().client("batch"))
    return ctx


def backfill_customers(
    since: Annotated[str | None, typer.Option(help="tenant-local date: customers changed since (default: all)")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="summarise what would be sent; send nothing")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="with --dry-run: every operation as a JSON line")]
    = False,
    restart: Annotated[bool, typer.Option("--restart", help="forget an interrupted run's checkpoint")] = False,
    chunk: Annotated[int, typer.Option(help="profiles per submitted chunk (the checkpoint moves per chunk)")]
    = CHUNK,
) -> None:
    """Load the customer master into Klaviyo on the batch lane (bulk profile import, consent under the
    guard); resumable after an interruption."""
    start = parse_since(since)
    ctx = cli_context()
    if restart and not dry_run:
        ctx.redis.delete(checkpoint_key(ctx))
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} customers read"),
               TimeElapsedColumn())
    # In a dry run with --verbose stdout carries the operations; the progress bar and summary go to stderr.
    out = Console(stderr=True) if dry_run and verbose else console
    with BlueCherryClient.from_settings(get_settings(), ctx.mapping) as client, \
            Progress(*columns, console=out) as progress:
        task = progress.add_task("customers", total=None)

        def show(stats: BackfillStats) -> None:
            progress.update(task, completed=stats.read, description=(
                f"customers: {stats.profiles} profiles, {stats.subscribes} subscribes, "
                f"{stats.problems} problems"))

        runner = CustomerBackfill(ctx, client, dry_run=dry_run, chunk=chunk, echo=typer.echo, progress=show,
                                  verbose=verbose)
        saved = Checkpoint.load(ctx.redis.get(checkpoint_key(ctx)))
        if saved.last_mod is not None:
            out.print(f"resuming an interrupted run after last_mod {saved.last_mod} ({saved.sent} sent)")
        stats = runner.run(start)
        show(stats)
    verb = "would be sent (dry run: nothing sent)" if dry_run else "queued on the batch lane"
    out.print(f"{stats.read} customers read in {stats.pages} pages: {stats.profiles} profiles and "
              f"{stats.subscribes} subscribes {verb}; {stats.problems} problems, {stats.conflicts} consent "
              f"conflicts, {stats.skipped} skipped")
    if dry_run:
        runner.would.print(out)
