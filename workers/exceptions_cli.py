"""`bcsync exceptions`: the exception register, for operators."""

from __future__ import annotations

from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from config.mapping import Owner
from state.factory import stores
from sync.exceptions import ExceptionRecord, dump
from workers.render_cli import compact_table, one_of, short_time

console = Console()
OWNERS = get_args(Owner)
STATUSES = ("open", "resolved", "all")


def _reason(record: ExceptionRecord) -> str:
    """The reason without the record key it often starts with (the row shows the key just above)."""
    for sep in (": ", "."):
        if record.reason.startswith(record.record_key + sep):
            return record.reason[len(record.record_key) + len(sep):]
    return record.reason


def exceptions(
    owner: Annotated[str | None, typer.Option(callback=one_of(OWNERS), help=" | ".join(OWNERS))] = None,
    type_: Annotated[str | None, typer.Option("--type", help="e.g. invalid_record, consent_conflict")] = None,
    status: Annotated[str, typer.Option(callback=one_of(STATUSES), help=" | ".join(STATUSES))] = "open",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Data problems with their owner team, reason, record and how often they were seen."""
    records = stores().exceptions.list(owner=owner, type=type_, status=None if status == "all" else status)
    if as_json:
        print(dump(records))
        return
    if not records:
        console.print(f"no {'' if status == 'all' else status + ' '}exceptions"
                      + (f" for {owner}" if owner else "") + (f" of type {type_}" if type_ else ""))
        return
    console.print(exception_table(f"Exceptions ({len(records)}, {status})", records))


def exception_table(title: str, records: list[ExceptionRecord]) -> Table:
    """Owner, type and severity, how often, when last, then the record and the reason under it."""
    table = compact_table(title, ("owner", "type / severity", "seen", "last seen"), "record / reason")
    for r in records:
        kind = Text(r.type)
        kind.append(f"\n{r.severity}", style="red" if r.severity == "critical" else "dim")
        what = Text(r.record_key)
        what.append(f"\n{_reason(r)}", style="dim")
        table.add_row(r.owner, kind, f"{r.count}x", short_time(r.last_seen), what)
    return table
