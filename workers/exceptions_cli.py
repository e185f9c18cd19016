"""`bcsync exceptions`: the exception register, for operators."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from config.mapping import Owner
from state.factory import stores
from sync.exceptions import ExceptionRecord, dump
from workers.render_cli import DEFAULT_PAGE, compact_table, one_of, page_footer, row_lines, short_time, shown_key

console = Console()
OWNERS = get_args(Owner)
STATUSES = ("open", "resolved", "all")
ALL = 10**9  # the register's list is capped by default: the command counts and pages them all


def _reason(record: ExceptionRecord) -> str:
    """The reason without the record key it often starts with (the row shows the key just above)."""
    for key in dict.fromkeys((record.record_key, shown_key(record.record_key))):
        for sep in (": ", "."):
            if record.reason.startswith(key + sep):
                return record.reason[len(key) + len(sep):]
    return record.reason


def exceptions(
    owner: Annotated[str | None, typer.Option(callback=one_of(OWNERS), help=" | ".join(OWNERS))] = None,
    type_: Annotated[str | None, typer.Option("--type", help="e.g. invalid_record, consent_conflict")] = None,
    status: Annotated[str, typer.Option(callback=one_of(STATUSES), help=" | ".join(STATUSES))] = "open",
    limit: Annotated[int | None, typer.Option(min=1, help=f"rows shown (default {DEFAULT_PAGE}; --json: all)")] = None,
    offset: Annotated[int, typer.Option(min=0, help="rows skipped first (the next page)")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="the reason in full, wrapped")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Data problems, newest first: the summary per owner and type first, then a page of rows (owner, type and
    severity, how often, when last, the record and the reason cut to one line: --verbose for all of it)."""
    records = stores().exceptions.list(owner=owner, type=type_, status=None if status == "all" else status,
                                       limit=ALL)
    if as_json:
        print(dump(records[offset:] if limit is None else records[offset:offset + limit]))
        return
    if not records:
        console.print(f"no {'' if status == 'all' else status + ' '}exceptions"
                      + (f" for {owner}" if owner else "") + (f" of type {type_}" if type_ else ""))
        return
    for line in summary_lines(records, status):
        console.print(line, markup=False, highlight=False)
    page = records[offset:offset + (limit or DEFAULT_PAGE)]
    if page:
        console.print()
        for line in exception_lines(page, console.width, verbose):
            console.print(line, markup=False, highlight=False, no_wrap=True, crop=False)
    console.print(page_footer(offset, len(page), len(records), "exceptions"), markup=False, highlight=False)


def summary_lines(records: list[ExceptionRecord], status: str) -> list[str]:
    """How many, then per owner: how many and of which types (most first) - before any row."""
    by_owner: dict[str, Counter[str]] = {}
    for r in records:
        by_owner.setdefault(r.owner, Counter())[r.type] += 1
    lines = [f"Exceptions ({status}): {len(records):,}"]
    for who, types in sorted(by_owner.items(), key=lambda item: -sum(item[1].values())):
        lines.append(f"  {who} {sum(types.values()):,}: " + ", ".join(f"{t} {n:,}" for t, n in types.most_common()))
    return lines


def exception_lines(records: list[ExceptionRecord], width: int, verbose: bool = False) -> list[str]:
    """Per exception: owner, type, severity, how often, when last and the record; the reason under it."""
    rows = [((r.owner, r.type, r.severity, f"{r.count}x", short_time(r.last_seen)), shown_key(r.record_key),
             _reason(r)) for r in records]
    return row_lines(("owner", "type", "severity", "seen", "last seen", "record"), rows, width, verbose)


def exception_table(title: str, records: list[ExceptionRecord]) -> Table:
    """Owner, type and severity, how often, when last, then the record and the reason under it (`bcsync audit`)."""
    table = compact_table(title, ("owner", "type / severity", "seen", "last seen"), "record / reason")
    for r in records:
        kind = Text(r.type)
        kind.append(f"\n{r.severity}", style="red" if r.severity == "critical" else "dim")
        what = Text(shown_key(r.record_key))
        what.append(f"\n{_reason(r)}", style="dim")
        table.add_row(r.owner, kind, f"{r.count}x", short_time(r.last_seen), what)
    return table
