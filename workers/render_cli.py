"""Table helpers shared by the operator commands: one readable line (or two) per row at 80 columns.

Rich shrinks every column of a wide table until each cell wraps into slivers; here the short columns (ids,
codes, counts, times) never wrap and one flexible last column takes the rest of the width.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable, Iterable, Sequence

import typer
from rich import box
from rich.cells import cell_len, set_cell_size
from rich.table import Table

from sync.record_keys import clean_record_key


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


GAP = "  "
DETAIL_INDENT = "    "
DEFAULT_PAGE = 50


def row_lines(header: Sequence[str], rows: Sequence[tuple[Sequence[str], str, str]], width: int,
              verbose: bool = False) -> list[str]:
    """Rows of two lines for a terminal `width` wide, never wrapped: the short columns (ids, codes, counts,
    times) aligned and whole, then what the row is about, cut with an ellipsis; under it, indented, the long
    text (an error, a reason) with the whole width, cut likewise - or, `verbose`, in full over as many lines as
    it takes. `header` names the short columns and the last one; a row is (short cells, about, long text)."""
    widths = [max([cell_len(header[i])] + [cell_len(cells[i]) for cells, _, _ in rows])
              for i in range(len(header) - 1)]

    def line(cells: Sequence[str], last: str) -> str:
        return clip(GAP.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + GAP + last, width)

    out = [line(header[:-1], header[-1])]
    for cells, about, detail in rows:
        out.append(line(cells, about))
        if not detail:
            continue
        if verbose:
            out += textwrap.wrap(detail, width, initial_indent=DETAIL_INDENT, subsequent_indent=DETAIL_INDENT,
                                 break_long_words=True, break_on_hyphens=False) or [DETAIL_INDENT]
        else:
            out.append(clip(DETAIL_INDENT + " ".join(detail.split()), width))
    return out


def clip(text: str, width: int) -> str:
    """`text` on one line of at most `width` cells, an ellipsis where it was cut."""
    text = text.rstrip()
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(0, width - 1)) + "…"


def page_footer(offset: int, shown: int, total: int, noun: str) -> str:
    """`showing 1-50 of 1,234; --offset 50 for more` - never a silent cap."""
    if total == 0:
        return ""
    if shown == 0:
        return f"nothing at --offset {offset:,}: there are {total:,} {noun}"
    more = f"; --offset {offset + shown} for more" if offset + shown < total else ""
    return f"showing {offset + 1:,}-{offset + shown:,} of {total:,} {noun}{more}"


def shown_key(key: str) -> str:
    """A record key as operators read it: without the space padding of the ERP's fixed-width codes."""
    return clean_record_key(key)
