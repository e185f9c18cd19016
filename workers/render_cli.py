"""Table helpers shared by the operator commands: one readable line (or two) per row at 80 columns.

Rich shrinks every column of a wide table until each cell wraps into slivers; here the short columns (ids,
codes, counts, times) never wrap and one flexible last column takes the rest of the width.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import typer
from rich import box
from rich.table import Table


def compact_table(title: str, fixed: tuple[str, ...], flexible: str) -> Table:
    """Columns `fixed` sized to their content and never wrapped; `flexible` last, wrapping in what is left."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    for name in fixed:
        table.add_column(name, no_wrap=True)
    table.add_column(flexible, ratio=1, min_width=16, overflow="fold")
    return table


def short_time(epoch: float | None) -> str:
    """`MM-DD HH:MM` in UTC: enough to tell rows apart; the full stamp is in the JSON output."""
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%m-%d %H:%M")


def one_of(choices: Iterable[str]) -> Callable[[str | None], str | None]:
    """An option callback refusing a value outside `choices` (a typo must not list nothing, silently)."""
    allowed = tuple(choices)

    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return check
