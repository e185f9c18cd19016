"""Plain-value parsing shared by the catalog and stock domains: codes, numbers and `last_mod` stamps.

Raw records reach the domain from two paths (REST JSON and CSV report drops, already mapped to REST
field names) so every parser accepts both JSON numbers and numeric strings, and normalises them the same
way: that is what makes the two paths give identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from config.mapping import US_STAMP_FORMATS
from sync.localtime import read_erp_datetime

_YES = frozenset({"y", "yes", "1", "true", "t"})


def code(value: Any) -> str:
    """An ERP code as text: stripped, '' for missing; 12345.0 from a spreadsheet becomes '12345'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def decimal(value: Any, what: str) -> Decimal | None:
    """A quantity or price: JSON number or numeric string; None/'' is None; anything else is a ValueError."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"{what}: expected a number, got {value!r}")
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    text = str(value).strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what}: expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return number


def stamp(value: Any, what: str = "last_mod", formats: Sequence[str] = US_STAMP_FORMATS) -> datetime | None:
    """A `last_mod` stamp: tenant-local time, no zone, truncated to the second (the ERP's resolution). Read
    as ISO or one of `formats` (the resource's: `Mapping.date_formats`; Blue Cherry's report shapes when not
    given)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = read_erp_datetime(str(value), formats)
        except ValueError:
            raise ValueError(f"{what}: not a date-time: {value!r}") from None
    # last_mod carries no zone in Blue Cherry; an aware value is taken at its wall-clock reading.
    return parsed.replace(tzinfo=None, microsecond=0)


def flag(value: Any) -> bool:
    """A Y/N style flag from JSON or CSV: True, 1, 'Y', 'yes', 'true' are set; anything else is not."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return code(value).lower() in _YES
