"""Debouncing and coalescing of stock figures (pure logic), and the newest-wins check at send time.

Figures for one variant arriving in quick succession collapse into one pending figure: the one with the
newest version (not the last to arrive: a slow figure computed earlier must not replace a newer one). A
pending figure is emitted once it has been quiet for `debounce_seconds`, or once it has waited
`max_wait_seconds` since it first became pending (so a SKU that flaps forever still reaches Klaviyo).
Times are plain seconds (e.g. `time.time()`), supplied by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from sync.stock.versions import is_stock_version


@dataclass(frozen=True, slots=True)
class PendingFigure:
    external_id: str
    quantity: int
    version: str  # FigureVersion.encode() (or a version of the former format)
    first_seen: float  # when this variant first became pending
    last_seen: float  # when its latest change arrived


def newest_wins(delivered_version: str | None, candidate_version: str | None) -> bool:
    """Whether a candidate write may be sent given the version already delivered for that variant.

    True only when the candidate is strictly newer (an equal version carries the same figure). A
    candidate without a version cannot prove it is newer and loses to any delivered version. A delivered
    version that cannot be parsed loses: the ERP's current figure is safer than a garbled ledger entry.
    """
    if delivered_version is None:
        return True
    if candidate_version is None:
        return False
    if not is_stock_version(candidate_version):
        raise ValueError(f"not a stock version: {candidate_version!r}")
    if not is_stock_version(delivered_version):
        return True
    return candidate_version > delivered_version  # encoded so that string order is version order


def merge(
    held: PendingFigure | None, external_id: str, quantity: int, version: str, now: float
) -> PendingFigure:
    """Fold a new figure into the one pending for its variant: the newest version wins the figure;
    the debounce clock restarts on every arrival, the max-wait clock does not."""
    if held is None:
        return PendingFigure(external_id, quantity, version, first_seen=now, last_seen=now)
    if newest_wins(held.version, version):
        return replace(held, quantity=quantity, version=version, last_seen=now)
    return replace(held, last_seen=now)


def due(
    pending: Iterable[PendingFigure],
    now: float,
    debounce_seconds: float,
    max_wait_seconds: float | None = None,
) -> list[PendingFigure]:
    """The pending figures to emit now: quiet for `debounce_seconds`, or pending for `max_wait_seconds`
    (default: 4 x debounce)."""
    max_wait = max_wait_seconds if max_wait_seconds is not None else 4 * debounce_seconds
    return [
        figure
        for figure in pending
        if now - figure.last_seen >= debounce_seconds or now - figure.first_seen >= max_wait
    ]
