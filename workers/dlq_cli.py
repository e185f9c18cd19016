"""`bcsync dlq ...`: inspect, requeue and purge dead letters."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from config.lanes import LANES
from delivery.envelope import envelope
from delivery.publish import publish
from state.dead_letters import DeadLetter
from state.factory import stores
from sync.operations import Operation
from workers.render_cli import compact_table, one_of, short_time

app = typer.Typer(help="Dead-letter queues (one per lane): list, show, requeue, purge.", no_args_is_help=True)
console = Console()
LaneOpt = Annotated[str | None, typer.Option("--lane", callback=one_of(LANES), help=" | ".join(LANES))]
CodeOpt = Annotated[str | None, typer.Option("--code", help="Klaviyo error code or HTTP status, e.g. invalid")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="a dead letter's id (`bcsync dlq list`)")]
OptionalIdArg = Annotated[str | None, typer.Argument(metavar="ID", help="one entry; or --lane with --all/--code")]


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def klaviyo_error(entry: DeadLetter) -> str:
    """What Klaviyo said the last time, where it pointed (the field to fix), else the fleet's reason."""
    for attempt in reversed(entry.attempts):
        for err in attempt.errors:
            said = err.get("detail") or err.get("title")
            if said:
                where = err.get("pointer") or err.get("parameter")
                return f"{said} ({where})" if where else str(said)
        if attempt.error:
            return attempt.error
    return entry.reason


def _records(entry: DeadLetter) -> str:
    recs = entry.records
    return recs[0] + (f" (+{len(recs) - 1} more)" if len(recs) > 1 else "") if recs else "-"


@app.command("list")
def list_entries(lane: LaneOpt = None, code: CodeOpt = None, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every dead letter, oldest first: id, lane, Klaviyo's code, tries, last failure, records, the error."""
    entries = stores().dead_letters.list(lane, code)
    if as_json:
        print(json.dumps([e.model_dump() | {"code": e.code} for e in entries], indent=2))
        return
    if not entries:
        console.print("no dead letters" + (f" in lane {lane}" if lane else "") + (f" with code {code}" if code else ""))
        return
    table = compact_table(f"Dead letters ({len(entries)})",
                          ("id", "lane", "code", "tries", "last failure"), "records / Klaviyo's error")
    for e in entries:
        what = Text(f"{e.kind} {_records(e)}")
        what.append(f"\n{klaviyo_error(e)}", style="dim")
        table.add_row(e.id, e.lane, e.code or "-", str(len(e.attempts)), short_time(e.last_failure), what)
    console.print(table)
    by_cause = Counter(f"{e.lane}/{e.code or '-'}" for e in entries)
    console.print("by lane/code: " + ", ".join(f"{k} {n}" for k, n in by_cause.most_common()))
    console.print("[dim]one in full: bcsync dlq show ID[/dim]")


def _get(entry_id: str) -> DeadLetter:
    entry = stores().dead_letters.get(entry_id.strip())
    if entry is None:
        raise typer.BadParameter(f"no dead letter {entry_id!r} (ids: bcsync dlq list)", param_hint="ID")
    return entry


@app.command()
def show(entry_id: IdArg) -> None:
    """One dead letter in full, as JSON: operations and every attempt with Klaviyo's error."""
    print(_get(entry_id).model_dump_json(indent=2))


def _requeue(entry: DeadLetter) -> None:
    env = envelope([Operation.model_validate(o) for o in entry.operations], entry.lane)
    env["requeued_from"] = entry.id
    publish(entry.task, [env], entry.lane)
    stores().dead_letters.remove(entry)


def _select(entry_id: str | None, lane: str | None, code: str | None, all_: bool) -> list[DeadLetter]:
    """The entries a requeue / purge acts on: one by id, or a lane's (all, or those with one code)."""
    if entry_id:
        return [_get(entry_id)]
    if lane and (all_ or code):
        return stores().dead_letters.list(lane, code)
    raise typer.BadParameter("give an ID, or --lane L with --all or --code C")


@app.command()
def requeue(
    entry_id: OptionalIdArg = None,
    lane: LaneOpt = None, code: CodeOpt = None, all_: bool = typer.Option(False, "--all"),
) -> None:
    """Send dead letters through the normal path again (after the cause was fixed)."""
    entries = _select(entry_id, lane, code, all_)
    for entry in entries:
        _requeue(entry)
    console.print(f"requeued {len(entries)} dead letter(s)")


@app.command()
def purge(
    entry_id: OptionalIdArg = None,
    lane: LaneOpt = None, code: CodeOpt = None, all_: bool = typer.Option(False, "--all"),
    yes: bool = typer.Option(False, "--yes", help="do not ask"),
) -> None:
    """Delete dead letters for good (asks first, unless --yes)."""
    dlq = stores().dead_letters
    entries = _select(entry_id, lane, code, all_)
    if not entries:
        console.print("nothing to purge")
        return
    if not yes and not typer.confirm(f"purge {len(entries)} dead letter(s)?"):
        raise typer.Abort()
    for e in entries:
        dlq.remove(e)
    console.print(f"purged {len(entries)} dead letter(s)")
