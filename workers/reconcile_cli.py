"""`bcsync reconcile [customers|consent|orders|stock|catalog|all] [--since DATE] [--sample N] [--repair] [--dry-run]`.

Compares Klaviyo with Blue Cherry (`flows.reconcile`), records each difference as an exception with its owner,
and with `--repair` re-delivers the fleet-owned ones (marked `repair` in the ledger and `bcsync audit`). Prints a
progress bar and a summary table: records compared, differences by type and owner (new in this run or already
known), repaired, left for people, and "in flight" (not compared: changes the fleet was still delivering when
re-checked at the end of the run: not recorded, the next run compares them). `--json` prints the summary as
JSON instead. Exit 0 whatever it found (the exceptions are the finding); 2 for a wrong argument.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from config.mapping import get_mapping
from flows.reconcile import Summary, build_reconciler, summary_json
from sync.reconcile.differences import AREAS, Area

console = Console(stderr=True)
# the run computes on the fleet's machines: below the workers on the CPU, as it is below live work on Klaviyo
NICENESS = 10


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(value, fmt).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS')", param_hint="--since")


def print_summary(summary: Summary, repair: bool, dry_run: bool) -> None:
    out = Console()
    owners = get_mapping().owners
    compared = ", ".join(f"{area} {n}" for area, n in summary.compared.items()) or "nothing"
    out.print(f"records compared: {compared} ({sum(summary.requests.values())} Klaviyo reads, "
              f"{summary.seconds:.1f} s)")
    table = Table("owner", "found", "new", "repaired", "left for people", "in flight")
    table.columns.insert(0, Column("type", no_wrap=True))  # a type name is what people search the playbook for
    found = Counter(d.type for d in summary.differences)
    new = Counter(t for t, _ in summary.new)
    fixed = Counter(d.type for d in summary.repaired)
    moving = summary.in_flight
    for name in sorted(set(found) | set(moving)):
        table.add_row(name, owners.owner_of(name), str(found[name]), str(new[name]), str(fixed[name]),
                      str(found[name] - fixed[name]), str(moving[name]))
    table.add_row("total", "", str(sum(found.values())), str(sum(new.values())), str(sum(fixed.values())),
                  str(len(summary.left_for_people)), str(sum(moving.values())))
    out.print(table)
    if moving:
        out.print(f"in flight, not compared: {sum(moving.values())} differences of changes the fleet was still "
                  f"delivering when re-checked ({summary.rechecked} customers compared again at the end); "
                  "not recorded - the next run compares them")
    if dry_run:
        out.print("dry run: no exception recorded, nothing repaired")
    elif not repair and any(d.fleet_owned for d in summary.differences):
        out.print("fleet-owned differences not repaired: run again with --repair")
    for d in summary.differences:
        if d.type == "recon_consent_klaviyo_side":
            out.print(f"two-way consent, for {owners.owner_of(d.type)}: customer {d.customer}: {d.reason}")


def reconcile(
    area: Annotated[str, typer.Argument(help="customers | consent | orders | stock | catalog | all")] = "all",
    since: Annotated[str | None, typer.Option(help="tenant-local date: records changed since")] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="compare only the first N customers")] = None,
    repair: Annotated[bool, typer.Option("--repair", help="re-deliver the fleet-owned differences")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="compare and report; record and send nothing")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="forget a stopped run's cursor")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the summary as JSON on stdout")] = False,
) -> None:
    """Compare Klaviyo with Blue Cherry; report each difference with its owner; --repair fixes the fleet's."""
    if area != "all" and area not in AREAS:
        console.print(f"bcsync reconcile: unknown area {area!r}; expected one of {', '.join(AREAS)} or all")
        raise typer.Exit(2)
    areas: list[Area] = list(AREAS) if area == "all" else [area]  # type: ignore[list-item]
    try:
        os.nice(NICENESS)
    except OSError:
        pass  # not allowed here: the run still goes, at normal priority
    reconciler = build_reconciler()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} compared"),
                  TimeElapsedColumn(), console=console, disable=as_json) as progress:
        task = progress.add_task("reconcile", total=None)

        def tick(what: str, n: int) -> None:
            progress.update(task, description=f"reconcile {what}", completed=n)

        reconciler.progress = tick
        summary = reconciler.run(areas, since=_since(since), sample=sample, repair=repair, dry_run=dry_run,
                                 restart=restart)
    reconciler.bluecherry.close()
    if as_json:
        typer.echo(json.dumps(summary_json(summary, get_mapping()), default=str))
    else:
        print_summary(summary, repair, dry_run)
