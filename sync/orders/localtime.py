"""Blue Cherry timestamps (tenant-local wall time, no zone) -> aware UTC datetimes.

Around daylight-saving changes a wall time can be ambiguous (it happens twice when clocks go back)
or non-existent (skipped when clocks go forward). Both are resolved deterministically with
`fold=0`, the PEP 495 default:

- ambiguous (e.g. 01:30 on the autumn night in New York): the FIRST occurrence, i.e. still on
  daylight time (01:30 EDT = 05:30 UTC);
- non-existent (e.g. 02:30 on the spring night): read with the offset in force BEFORE the gap,
  which lands the instant as far past the gap as the time was into it (02:30 EST = 07:30 UTC =
  03:30 EDT).

So the same ERP string always becomes the same instant, whichever worker converts it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


class LocalTimeError(ValueError):
    pass


@lru_cache(maxsize=16)
def tenant_zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_local(text: str, timezone: str) -> datetime:
    """'2026-03-08 02:30:00' (or '2026-03-08', or ISO with 'T') in the tenant zone -> aware UTC.

    A string that carries its own UTC offset is honoured as such. Raises LocalTimeError for
    anything that is not a real calendar date and time (e.g. '2026-02-30 10:00:00').
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise LocalTimeError(f"not a valid date/time 'YYYY-MM-DD HH:MM:SS': {text!r} ({exc})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tenant_zone(timezone), fold=0)
    return moment.astimezone(UTC)
