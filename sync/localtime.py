"""Tenant-local time: Blue Cherry timestamps (tenant-local wall time, no zone) <-> aware UTC, and the
DST-safe arithmetic of the poll watermarks.

Blue Cherry stamps `last_mod` (and every order, pick, invoice and memo date) in tenant-local wall time, no
zone, one-second resolution, and filters on that text. The watermark is kept in UTC (comparable across a
daylight-saving change) and turned back into local wall time only to build the filter. See docs/poller.md.

`read_erp_datetime` is the one reader of an ERP date or date-time: ISO 8601 always, then the tenant's strptime
formats for the resource (`Mapping.date_formats`), in order. Every parser of every resource goes through it
(customers, orders and their documents, styles, inventory, last_mod). `parse_local` places what it read: a
string that carries its own UTC offset is honoured as such; a naive one is read in the tenant zone.

Around daylight-saving changes a wall time can be ambiguous (it happens twice when clocks go back) or
non-existent (skipped when clocks go forward). Both are resolved deterministically with `fold=0`, the PEP 495 default:

- ambiguous (e.g. 01:30 on the autumn night in New York): the FIRST occurrence, i.e. still on
  daylight time (01:30 EDT = 05:30 UTC). A watermark built from it can only be too early (re-read,
  de-duplicated), never too late (missed);
- non-existent (e.g. 02:30 on the spring night): read with the offset in force BEFORE the gap,
  which lands the instant as far past the gap as the time was into it (02:30 EST = 07:30 UTC =
  03:30 EDT).

So the same ERP string always becomes the same instant, whichever worker converts it. That is right for
watermarks and filters, not for ordering versions: two writes of one record in a repeated hour could sort
the wrong way round. `erp_instant` orders them: it also knows when the fleet read the value (see its
docstring and docs/poller.md, "Versions: an unambiguous order").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

STAMP = "%Y-%m-%d %H:%M:%S"
# Real zones never move their offset by more than this in one step, nor twice within it.
DST_LOOKAHEAD = timedelta(hours=3)


class LocalTimeError(ValueError):
    pass


@lru_cache(maxsize=16)
def tenant_zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def read_erp_datetime(text: str, formats: Sequence[str] = ()) -> datetime:
    """An ERP date or date-time as written: ISO 8601 (`datetime.fromisoformat`: '2026-03-08 02:30:00',
    '2026-03-08', 'T' or an offset), else the first of `formats` (strptime) that reads the whole text.
    Naive unless the text carries an offset. Raises LocalTimeError (a ValueError) naming what was tried when
    nothing reads it, or when it is no real calendar date and time (e.g. '2026-02-30 10:00:00')."""
    stripped = text.strip()
    try:
        return datetime.fromisoformat(stripped)
    except ValueError as exc:
        iso_problem = str(exc)
    for fmt in formats:
        try:
            return datetime.strptime(stripped, fmt)
        except ValueError:
            continue
    tried = "ISO 'YYYY-MM-DD HH:MM:SS'" + "".join(f", {fmt!r}" for fmt in formats)
    raise LocalTimeError(f"not a valid date/time ({tried}): {text!r} ({iso_problem})")


def parse_local(text: str, timezone: str | ZoneInfo, formats: Sequence[str] = ()) -> datetime:
    """'2026-03-08 02:30:00' (or '2026-03-08', or ISO with 'T', or one of `formats`) in the tenant zone ->
    aware UTC.

    A string that carries its own UTC offset is honoured as such; a naive one is read in `timezone` (a zone
    name or a ZoneInfo) with fold=0. Raises LocalTimeError (a ValueError) for anything that is not a real
    calendar date and time (e.g. '2026-02-30 10:00:00').
    """
    moment = read_erp_datetime(text, formats)
    if moment.tzinfo is None:
        zone = timezone if isinstance(timezone, ZoneInfo) else tenant_zone(timezone)
        moment = moment.replace(tzinfo=zone, fold=0)
    return moment.astimezone(UTC)


def erp_instant(local: datetime, zone: ZoneInfo, read_at: datetime) -> datetime:
    """The UTC instant of a tenant-local wall time that the fleet read at `read_at` (aware), for ordering.

    In a repeated (fall-back) hour the wall time has two candidate instants; the LATEST one not after
    `read_at` is taken: a value cannot have been written after it was read, and of two successive writes
    of one record the second happened after the first was read, so it always resolves later (proof in
    docs/poller.md). When no candidate is at or before `read_at` (the ERP's clock ahead of ours) the
    earliest is taken. A non-existent (spring-forward gap) time resolves as `parse_local` does, with the
    offset in force before the gap (02:30 on the New York spring night = 07:30 UTC), whatever `read_at`.
    An aware `local` is taken at its own offset.
    """
    if read_at.tzinfo is None:
        raise TypeError("read_at must be an aware datetime (the fleet's read time, UTC)")
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if second <= first:  # one instant, or a gap (where fold=0 is the later reading): as parse_local
        return first
    return second if second <= read_at else first


def parse_erp_instant(text: str, zone: ZoneInfo, read_at: datetime, formats: Sequence[str] = ()) -> datetime:
    """`erp_instant` of an ERP stamp ('2026-11-01 01:10:00', ISO or one of `formats`; one with its own UTC
    offset is honoured). Raises LocalTimeError (a ValueError) for anything that is not a real calendar date
    and time."""
    return erp_instant(read_erp_datetime(text, formats), zone, read_at)


def local_to_utc(text: str, zone: ZoneInfo, formats: Sequence[str] = ()) -> datetime:
    """UTC instant of a local stamp (`parse_local` with the tenant's ZoneInfo). In a repeated (fall-back)
    hour the EARLIER instant is taken, so a watermark built from it can only be too early (re-read,
    de-duplicated), never too late (missed). A stamp with its own UTC offset is taken at that offset."""
    return parse_local(text, zone, formats)


def utc_to_local(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime(STAMP)


def filter_start(watermark_utc: datetime, overlap_seconds: float, zone: ZoneInfo) -> str:
    """The local `last_mod ge` bound for the next read: watermark minus the overlap, widened across DST.

    After a fall-back the wall clock repeats an hour, so records written after ``start`` can carry local
    stamps EARLIER than local(start) by up to the offset drop. Wall time of any t >= start is at least
    ``local(start) - (offset(start) - offset(t))``; the offset drop within DST_LOOKAHEAD bounds it.
    """
    start = watermark_utc - timedelta(seconds=overlap_seconds)
    offset_now = start.astimezone(zone).utcoffset() or timedelta(0)
    offset_later = (start + DST_LOOKAHEAD).astimezone(zone).utcoffset() or timedelta(0)
    widen = max(timedelta(0), offset_now - offset_later)
    return (start.astimezone(zone).replace(tzinfo=None) - widen).strftime(STAMP)


