"""`bcsync backfill customers|orders`: one process (workers/backfill_customers.py, workers/backfill_orders.py) or,
with `--workers N`, the range split across N processes (workers/backfill_parallel.py, which builds on both)."""

from __future__ import annotations

from typing import Annotated

import typer

from workers import backfill_customers as customers
from workers import backfill_orders as orders
from workers.backfill_parallel import run_customers_parallel, run_parallel

WORKERS_HELP = "processes: the range is split by last_mod across them, each slice resumable"


def backfill_customers(
    since: Annotated[str | None, typer.Option(help="tenant-local date: customers changed since (default: all)")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="summarise what would be sent; send nothing")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="with --dry-run: every operation as a JSON line")]
    = False,
    restart: Annotated[bool, typer.Option("--restart", help="forget an interrupted run's checkpoint")] = False,
    chunk: Annotated[int, typer.Option(help="profiles per submitted chunk (the checkpoint moves per chunk)")]
    = customers.CHUNK,
    workers: Annotated[int, typer.Option("--workers", min=1, help=WORKERS_HELP)] = 1,
) -> None:
    """Load the customer master into Klaviyo on the batch lane (bulk profile import, consent under the
    guard); resumable after an interruption."""
    if workers == 1 or dry_run:  # a dry run computes in one process
        customers.backfill_customers(since=since, dry_run=dry_run, verbose=verbose, restart=restart, chunk=chunk)
        return
    totals = run_customers_parallel(customers.parse_since(since), workers, chunk=chunk, restart=restart,
                                    console=customers.console)
    customers.console.print(
        f"{totals.read} customers read in {totals.pages} pages: {totals.profiles} profiles and "
        f"{totals.subscribes} subscribes queued on the batch lane; {totals.problems} problems, "
        f"{totals.conflicts} consent conflicts, {totals.skipped} skipped")


def backfill_orders(
    since: Annotated[str | None, typer.Option(help="tenant-local date: changed since (default: all)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="compute and summarise, send nothing")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="with --dry-run: every operation as a JSON line")]
    = False,
    restart: Annotated[bool, typer.Option("--restart", help="forget an earlier run's checkpoints")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help=WORKERS_HELP)] = 1,
) -> None:
    """Send historical order events with backfill=true (no flows) on the batch lane; resumable."""
    if workers == 1 or dry_run:
        orders.backfill_orders(since=since, dry_run=dry_run, verbose=verbose, restart=restart)
        return
    stats = run_parallel(orders._since(since), workers, restart=restart, console=orders.console)
    orders.console.print(f"{stats.orders} orders, {stats.documents} documents: {stats.events} events queued on the "
                         f"batch lane, {stats.profiles} aggregate profiles, {stats.excluded} excluded, "
                         f"{stats.problems} with problems")
