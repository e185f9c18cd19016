"""`bcsync dlq ...`: inspect, requeue and purge dead letters."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tasks.deadletters import DeadLetter
from workers import stores

app = typer.Typer(help="Dead-letter queues (one per lane): list, show, requeue, purge.", no_args_is_help=True)
console = Console()
LaneOpt = Annotated[str | None, typer.Option("--lane", help="fast | default | batch")]
CodeOpt = Annotated[str | None, typer.Option("--code", help="Klaviyo error code or HTTP status, e.g. invalid")]


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_entries(lane: LaneOpt = None, code: CodeOpt = None, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every dead letter, newest last: id, lane, kind, records, Klaviyo's code, attempts, failures."""
    entries = stores.dead_letters().list(lane, code)
    if as_json:
        print(json.dumps([e.model_dump() | {"code": e.code} for e in entries], indent=2))
        return
    table = Table(title=f"Dead letters ({len(entries)})")
    for col in ("id", "lane", "kind", "records", "code", "attempts", "first failure", "last failure", "reason"):
        table.add_column(col)
    for e in entries:
        recs = ", ".join(e.records[:3]) + (f" (+{len(e.records) - 3})" if len(e.records) > 3 else "")
        table.add_row(e.id, e.lane, e.kind, recs, e.code or "", str(len(e.attempts)), _when(e.first_failure),
                      _when(e.last_failure), e.reason)
    console.print(table)


@app.command()
def show(entry_id: str) -> None:
    """One dead letter in full: operations and every attempt with Klaviyo's error."""
    entry = stores.dead_letters().get(entry_id)
    if entry is None:
        raise typer.BadParameter(f"no dead letter {entry_id!r}", param_hint="ID")
    print(entry.model_dump_json(indent=2))


def _requeue(entry: DeadLetter) -> None:
    from sync.operations import Operation
    from tasks.delivery import envelope, publish

    env = envelope([Operation.model_validate(o) for o in entry.operations], entry.lane)
    env["requeued_from"] = entry.id
    publish(entry.task, [env], entry.lane)
    stores.dead_letters().remove(entry)


@app.command()
def requeue(
    entry_id: Annotated[str | None, typer.Argument(help="one entry; or use --lane with --all/--code")] = None,
    lane: LaneOpt = None, code: CodeOpt = None, all_: bool = typer.Option(False, "--all"),
) -> None:
    """Send dead letters through the normal path again (after the cause was fixed)."""
    dlq = stores.dead_letters()
    if entry_id:
        entry = dlq.get(entry_id)
        if entry is None:
            raise typer.BadParameter(f"no dead letter {entry_id!r}", param_hint="ID")
        entries = [entry]
    elif lane and (all_ or code):
        entries = dlq.list(lane, code)
    else:
        raise typer.BadParameter("give an ID, or --lane L with --all or --code C")
    for entry in entries:
        _requeue(entry)
    console.print(f"requeued {len(entries)} dead letter(s)")


@app.command()
def purge(
    entry_id: Annotated[str | None, typer.Argument()] = None,
    lane: LaneOpt = None, code: CodeOpt = None, all_: bool = typer.Option(False, "--all"),
    yes: bool = typer.Option(False, "--yes", help="do not ask"),
) -> None:
    """Delete dead letters for good (they are listed first)."""
    dlq = stores.dead_letters()
    if entry_id:
        found = dlq.get(entry_id)
        entries = [found] if found else []
    elif lane and (all_ or code):
        entries = dlq.list(lane, code)
    else:
        raise typer.BadParameter("give an ID, or --lane L with --all or --code C")
    if not entries:
        console.print("nothing to purge")
        return
    if not yes and not typer.confirm(f"purge {len(entries)} dead letter(s)?"):
        raise typer.Abort()
    for e in entries:
        dlq.remove(e)
    console.print(f"purged {len(entries)} dead letter(s)")
