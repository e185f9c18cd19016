"""The ERP versions of stock: of a stored row or location record, and of a figure computed from them.

**A record's version** is the change version the poller gives it (`sync.changes.change_version`:
``<last_mod UTC>#<fleet sequence>``, or ``s<ERP counter>#...`` where the mapping names one): its last_mod
resolved to an unambiguous UTC instant with the time it was read (a repeated fall-back hour included), then
the per-record sequence that orders two changes of one record within a second. A CSV report (or any bulk
reader, `report_version`) builds the same kind of version from the report's as-of time: its `Last Mod`
column resolved against that time, sequence 0 (a poller read of the same second wins); a report without a
last_mod column gives ``0000-00-00T00:00:00Z#<as-of, epoch seconds>``: older than any dated change (the
REST path always wins over it), and between such reports the later report wins. Rows stored by the fleet
before versions existed (JSON with a `last_mod`) get ``<that last_mod at its earlier instant>#000000``
(`legacy_row_version`). No worker clock is part of any stock version.

**A figure's version** (`FigureVersion`) derives from EVERY input of the computation - every stored row of
the SKU, sellable or not, and every stored location record (a sellable flag change is a location change
with its own version) - as (newest contributing version, sum of the contributing versions' ranks). The
rank (`version_rank`) is a number strictly increasing in version order, so the sum strictly grows whenever
any input gets newer or a new one appears: a warehouse made non-sellable, or a row older than the newest one
changing, still makes a newer figure. Rows and locations are only ever replaced by newer ones, and a row is
stored and its figure computed in one atomic step (`flows.stock`), so the figures of one SKU are computed in
the order of their inputs and their versions strictly increase in that order; the same stored data always
gives the same version (nothing depends on when or where it was computed).

Encoded so that string order is version order, and after every version of the former format
(``2026-11-20T13:05:00~2026-11-20T18:05:03.120000Z``) a live Redis may still hold:

    v2026-11-01T06:20:00Z#000002+225377814400000000000004   (three inputs)
    v<newest contributing version>+<digits of the rank sum, 2 digits><rank sum>

The ``+`` sorts below every character that can follow a shorter version's end, and the width prefix makes
the sum compare as a number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sync.catalog.values import stamp
from sync.changes import NO_STAMP, STAMP_FORMAT
from sync.localtime import erp_instant, parse_local, tenant_zone

FIGURE_MARK = "v"  # sorts after every digit: after every version of the former format
SUM_MARK = "+"
LEGACY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}~\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
FIGURE = re.compile(r"^v(?P<newest>[^+]*)\+(?P<width>\d{2})(?P<total>\d+)$")
_STAMP_VERSION = re.compile(r"^(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)#(?P<seq>\d+)$")
_COUNTER_VERSION = re.compile(r"^s(?P<counter>\d+)#(?P<rest>.+)$")
SEQ_SPAN = 10**12  # sequences below this rank in order (fleet sequences, a report's epoch seconds)
COUNTER_BASE = 10**24  # above every stamp rank (year 9999 = 2.5e11 s x SEQ_SPAN)


def version_rank(version: str) -> int:
    """A number strictly increasing in the order of record versions (0 for anything else, e.g. "")."""
    counter = _COUNTER_VERSION.match(version)
    if counter:
        return COUNTER_BASE * (1 + int(counter["counter"])) + version_rank(counter["rest"])
    match = _STAMP_VERSION.match(version)
    if not match:
        return 0
    seconds = 0
    if match["stamp"] != NO_STAMP:
        try:
            seconds = int(datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC).timestamp())
        except ValueError:
            seconds = 0
    return max(0, seconds) * SEQ_SPAN + min(int(match["seq"]), SEQ_SPAN - 1)


@dataclass(frozen=True, slots=True)
class FigureVersion:
    newest: str  # the newest version among the figure's inputs ("" when it had none)
    total: int  # the sum of the inputs' ranks

    @classmethod
    def of(cls, versions: Iterable[str]) -> FigureVersion:
        taken = list(versions)
        return cls(newest=max(taken, default=""), total=sum(version_rank(v) for v in taken))

    def encode(self) -> str:
        digits = str(self.total)
        return f"{FIGURE_MARK}{self.newest}{SUM_MARK}{len(digits):02d}{digits}"

    @classmethod
    def parse(cls, text: str) -> FigureVersion:
        match = FIGURE.match(text)
        if not match or len(match["total"]) != int(match["width"]):
            raise ValueError(f"not a stock version: {text!r}")
        return cls(newest=match["newest"], total=int(match["total"]))


def is_stock_version(text: str) -> bool:
    """A figure version, or one of the former format (which every figure version sorts after)."""
    if LEGACY.match(text):
        return True
    try:
        FigureVersion.parse(text)
    except ValueError:
        return False
    return True


def report_version(last_mod: Any, as_of: datetime, timezone: str) -> str:
    """The version of a record read from a report (or any bulk read) true as of `as_of` (aware)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (it is compared across hosts)")
    try:
        local = stamp(last_mod)
    except ValueError:
        local = None
    if local is None:
        return f"{NO_STAMP}#{max(0, int(as_of.timestamp())):010d}"
    instant = erp_instant(local, tenant_zone(timezone), as_of.astimezone(UTC))
    return f"{instant.strftime(STAMP_FORMAT)}#{0:06d}"


def legacy_row_version(last_mod: str, timezone: str) -> str:
    """The version of a row stored before versions existed (its naive local `last_mod`, ISO): the earlier
    instant of a repeated hour, sequence 0 - any read of the same change since is at least as new."""
    if not last_mod:
        return ""
    try:
        instant = parse_local(last_mod, timezone)
    except ValueError:
        return ""
    return f"{instant.strftime(STAMP_FORMAT)}#{0:06d}"

