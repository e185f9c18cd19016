"""Which debounced stock figures and held catalog rows a stock flush takes: whole 100-row jobs.

Klaviyo's catalog bulk endpoints take up to 100 rows a job and the limiter counts jobs, so the beat's flush
every second would otherwise spend a job on each second's tail. A flush takes whole chunks of 100 per kind
(oldest due first), and a tail only once it has waited `bulk_max_wait_seconds` past its due time (stock
figures: their debounce; catalog rows: since the outbox last became non-empty). Nothing is lost or left: the
tail stays in its Redis hash, beat flushes every second, and a flush that leaves a tail schedules one for when
it is due (a fleet without beat still sends it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sync.stock.coalesce import PendingFigure

MAX_WAIT_FACTOR = 4  # a figure pending this many debounces is due even if it keeps changing (coalesce.due)


def due_at(figure: PendingFigure, debounce_seconds: float) -> float:
    """When a pending figure became due: quiet for a debounce, or pending for MAX_WAIT_FACTOR debounces."""
    return min(figure.last_seen + debounce_seconds, figure.first_seen + MAX_WAIT_FACTOR * debounce_seconds)


def whole_figures(ready: list[PendingFigure], now: float, debounce_seconds: float, max_wait: float,
                  rows: int) -> tuple[list[PendingFigure], float | None]:
    """The due figures to send now, oldest due first: whole chunks of `rows`, or all of them once the oldest
    has waited `max_wait` past its due time; and when the held tail will be due (None: nothing held)."""
    ordered = sorted(ready, key=lambda f: due_at(f, debounce_seconds))
    if not ordered:
        return [], None
    oldest = due_at(ordered[0], debounce_seconds)
    if now - oldest >= max_wait:
        return ordered, None
    whole = len(ordered) // rows * rows
    held = ordered[whole:]
    return ordered[:whole], (due_at(held[0], debounce_seconds) + max_wait if held else None)


def whole_rows(held: Iterable[tuple[str, str]], rows: int, aged: bool) -> dict[str, str]:
    """The catalog rows (outbox field -> raw row) to claim: whole chunks of `rows` per kind, every row when
    the outbox's tail is `aged`. A row that cannot be read goes along (its sender reports it)."""
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for field, raw in held:
        try:
            kind = str(json.loads(raw).get("kind"))
        except (ValueError, AttributeError):
            kind = "?"
        by_kind.setdefault(kind, []).append((field, raw))
    chosen: dict[str, str] = {}
    for kind, entries in by_kind.items():
        take = entries if aged or kind == "?" else entries[: len(entries) // rows * rows]
        chosen.update(take)
    return chosen
