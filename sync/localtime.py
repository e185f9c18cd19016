"""Per-resource poll watermarks, and the tenant-local <-> UTC arithmetic that makes them DST-safe.

Blue Cherry stamps `last_mod` in tenant-local wall time, no zone, one-second resolution, and filters on that
text. The watermark is kept in UTC (comparable across a daylight-saving change) and turned back into local
wall time only to build the filter. See docs/poller.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

STAMP = "%Y-%m-%d %H:%M:%S"
# Real zones never move their offset by more than this in one step, nor twice within it.
DST_LOOKAHEAD = timedelta(hours=3)


def parse_local(text: str) -> datetime:
    """A tenant-local stamp (``YYYY-MM-DD HH:MM:SS``, ``...THH:MM:SS`` or a bare date) as a naive datetime."""
    text = text.strip()
    for fmt in (STAMP, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"'{text}' is not a tenant-local time (expected 'YYYY-MM-DD HH:MM:SS')")


def local_to_utc(text: str, zone: ZoneInfo) -> datetime:
    """UTC instant of a local stamp. In a repeated (fall-back) hour the EARLIER instant is taken, so a
    watermark built from it can only be too early (re-read, de-duplicated), never too late (missed)."""
    return parse_local(text).replace(tzinfo=zone, fold=0).astimezone(UTC)


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


