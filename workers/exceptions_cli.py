"""`bcsync exceptions`: the exception register, for operators."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sync.exceptions import dump
from workers import stores

console = Console()


def exceptions(
    owner: Annotated[str | None, typer.Option(help="operations | ecommerce | finance")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="e.g. invalid_record, consent_conflict")] = None,
    status: Annotated[str, typer.Option(help="open | resolved | all")] = "open",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Data problems with their owner team, reason, record and how often they were seen."""
    records = stores.exceptions().list(owner=owner, type=type_, status=None if status == "all" else status)
    if as_json:
        print(dump(records))
        return
    table = Table(title=f"Exceptions ({len(records)})")
    for col in ("owner", "type", "severity", "record", "reason", "count", "last seen"):
        table.add_column(col)
    for r in records:
        last = dt.datetime.fromtimestamp(r.last_seen, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(r.owner, r.type, r.severity, r.record_key, r.reason, str(r.count), last)
    console.print(table)
