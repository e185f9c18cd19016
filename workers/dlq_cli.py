"""`bcsync dlq ...`: inspect, requeue and purge dead letters."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console

from config.lanes import LANES
from delivery.envelope import envelope
from delivery.publish import publish, publish_envelopes
from state.dead_letters import Attempt, DeadLetter
from state.factory import stores
from sync.operations import Operation
from workers.render_cli import DEFAULT_PAGE, one_of, page_footer, row_lines, short_time, shown_key

app = typer.Typer(help="Dead-letter queues (one per lane): list, show, requeue, purge.", no_args_is_help=True)
console = Console()
LaneOpt = Annotated[str | None, typer.Option("--lane", callback=one_of(LANES), help=" | ".join(LANES))]
CodeOpt = Annotated[str | None, typer.Option("--code", help="Klaviyo error code or HTTP status, e.g. invalid")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="a dead letter's id (`bcsync dlq list`)")]
OptionalIdArg = Annotated[str | None, typer.Argument(metavar="ID", help="one entry; or --lane with --all/--code")]
SHOW_ARGS_CHARS = 2000  # a page of change events is long: `--json` has it all


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
    recs = [shown_key(r) for r in entry.records]
    return recs[0] + (f" (+{len(recs) - 1} more)" if len(recs) > 1 else "") if recs else "-"


def _kind(entry: DeadLetter) -> str:
    """What failed: an operation kind (`unsubscribe`), or a task by its name (`handle_change`)."""
    return entry.task.removeprefix("bcsync.") if entry.kind == "task" else entry.kind


def _retention(entry: DeadLetter) -> str:
    if entry.expires_at is None:
        return "" if entry.legacy else "(kept)"
    day = dt.datetime.fromtimestamp(entry.expires_at, dt.UTC).strftime("%m-%d")
    return f"({'EXPIRING' if entry.warned_at else 'expires'} {day})"


@app.command("list")
def list_entries(
    lane: LaneOpt = None, code: CodeOpt = None,
    limit: Annotated[int | None, typer.Option(min=1, help=f"rows shown (default {DEFAULT_PAGE}; --json: all)")] = None,
    offset: Annotated[int, typer.Option(min=0, help="rows skipped first (the next page)")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="the error in full, wrapped")] = False,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Dead letters, oldest first: the summary per lane and code first, then a page of rows (id, lane, Klaviyo's
    code, tries, last failure, records and the error cut to one line: --verbose or `dlq show ID` for all of it)."""
    entries = sorted(stores().dead_letters.list(lane, code), key=lambda e: e.last_failure)  # oldest first
    if as_json:
        page = entries[offset:] if limit is None else entries[offset:offset + limit]
        print(json.dumps([e.model_dump() | {"code": e.code, "records": e.records} for e in page], indent=2))
        return
    if not entries:
        console.print("no dead letters" + (f" in lane {lane}" if lane else "") + (f" with code {code}" if code else ""))
        return
    for line in summary_lines(entries):
        console.print(line, markup=False, highlight=False)
    page = entries[offset:offset + (limit or DEFAULT_PAGE)]
    rows = [((e.id, e.lane, e.code or "-", str(len(e.attempts)), short_time(e.last_failure)),
             _records(e), f"{_kind(e)} {_retention(e)}".rstrip() + f": {klaviyo_error(e)}") for e in page]
    if rows:
        console.print()
        for line in row_lines(("id", "lane", "code", "tries", "last failure", "records"), rows, console.width,
                              verbose):
            console.print(line, markup=False, highlight=False, no_wrap=True, crop=False)
    console.print(page_footer(offset, len(page), len(entries), "dead letters"), markup=False, highlight=False)
    console.print("[dim]one in full: bcsync dlq show ID[/dim]")


def summary_lines(entries: list[DeadLetter]) -> list[str]:
    """How many, per lane and per lane/code, and what needs acting on - before any row."""
    per_lane = Counter(e.lane for e in entries)
    lines = [f"Dead letters: {len(entries):,} (" + ", ".join(f"{ln} {per_lane[ln]:,}" for ln in LANES if ln in per_lane)
             + ")"]
    by_cause = Counter(f"{e.lane}/{e.code or '-'}" for e in entries)
    lines.append("by lane/code: " + ", ".join(f"{k} {n:,}" for k, n in by_cause.most_common()))
    if kept := sum(1 for e in entries if e.expires_at is None and not e.legacy):
        lines.append(f"{kept:,} (kept): consent or a privacy deletion, kept until purged")
    if expiring := sum(1 for e in entries if e.warned_at):
        lines.append(f"{expiring:,} EXPIRING: requeue or purge them, or they are deleted at the time shown")
    return lines


def _get(entry_id: str) -> DeadLetter:
    entry = stores().dead_letters.get(entry_id.strip())
    if entry is None:
        raise typer.BadParameter(f"no dead letter {entry_id!r} (ids: bcsync dlq list)", param_hint="ID")
    return entry


@app.command()
def show(entry_id: IdArg, as_json: bool = typer.Option(False, "--json", help="the whole entry as JSON")) -> None:
    """One dead letter in full: what it carried, its retention, every attempt with Klaviyo's error and the
    traceback of an unexpected error."""
    entry = _get(entry_id)
    if as_json:
        print(entry.model_dump_json(indent=2))
        return
    for line in show_lines(entry):
        console.print(line, markup=False, highlight=False)


def show_lines(entry: DeadLetter) -> list[str]:
    what = f"task {entry.task}" if entry.kind == "task" else f"{entry.kind}, task {entry.task}"
    lines = [f"dead letter {entry.id}: {what}, lane {entry.lane}",
             f"reason: {entry.reason}",
             f"failed: first {_when(entry.first_failure)}, last {_when(entry.last_failure)} (UTC)",
             f"retention: {_retention_in_full(entry)}",
             f"records: {', '.join(shown_key(r) for r in entry.records) or '-'}"]
    if entry.is_task:
        args = json.dumps(entry.args, default=str)
        lines.append("args: " + (args if len(args) <= SHOW_ARGS_CHARS else args[:SHOW_ARGS_CHARS] + " ... (--json)"))
    if entry.operations:
        lines.append(f"operations ({len(entry.operations)}):")
    for op in entry.operations:
        rec = f" ({shown_key(op['record'])})" if op.get("record") else ""
        lines.append(f"  {op.get('kind', '?')} {op.get('key', '?')}{rec}")
    lines.append(f"attempts ({len(entry.attempts)}):")
    for n, attempt in enumerate(entry.attempts, 1):
        lines += _attempt_lines(n, attempt)
    return lines


def _attempt_lines(n: int, attempt: Attempt) -> list[str]:
    """One attempt: when, HTTP status and endpoint, the error; Klaviyo's errors; the traceback, if any."""
    head = " ".join(x for x in (f"HTTP {attempt.status}" if attempt.status else "", attempt.endpoint or "") if x)
    lines = [f"  {n}. {_when(attempt.at)} {head + ': ' if head else ''}{attempt.error}"]
    for err in attempt.errors:
        said = " ".join(str(err[k]) for k in ("code", "detail", "pointer") if err.get(k))
        if said:
            lines.append(f"     Klaviyo: {said}")
    if attempt.traceback:
        lines += ["     " + tb for tb in attempt.traceback.rstrip().splitlines()]
    return lines


def _retention_in_full(entry: DeadLetter) -> str:
    if entry.expires_at is None:
        if entry.legacy:
            return "written by an older version; the next sweep gives it an expiry"
        return "kept until purged (consent or privacy deletion)"
    if entry.warned_at:
        return f"deleted after {_when(entry.expires_at)} UTC (owner warned {_when(entry.warned_at)} UTC)"
    return f"expires {_when(entry.expires_at)} UTC (the owner is warned first)"


def requeue_entry(entry: DeadLetter) -> None:
    """Publish again, and only once the broker has it, remove the entry (a failed publish keeps it). The console
    requeues with this too."""
    if entry.is_task:
        assert entry.args is not None
        publish(entry.task, entry.args, entry.lane)
    else:
        env = envelope([Operation.model_validate(o) for o in entry.operations], entry.lane)
        env["requeued_from"] = entry.id
        # through the in-flight registry like any submission: an envelope already holding these keys (a
        # re-sync since) delivers them, and this one is not sent beside it
        publish_envelopes([env], task=entry.task)
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
        requeue_entry(entry)
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
    kept = sum(1 for e in entries if e.expires_at is None and not e.legacy)
    also = f" ({kept} of them consent or privacy deletions, never sent otherwise)" if kept else ""
    if not yes and not typer.confirm(f"purge {len(entries)} dead letter(s){also}?"):
        raise typer.Abort()
    for e in entries:
        dlq.remove(e)
    console.print(f"purged {len(entries)} dead letter(s)")
