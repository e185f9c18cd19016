"""Reading raw ERP values the way docs/rules.md says: text, money, quantities, local times, emails, phones.

Every reader raises `InvalidRecord` with a reason instead of guessing; the caller skips the record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

CENT = Decimal("0.01")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


class InvalidRecord(ValueError):
    """A record the rules call invalid: it produces no expectation (ExpectedState.skipped says why)."""


def text(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    return "" if value is None else str(value).strip()


def rows(record: dict[str, Any], child: str) -> list[dict[str, Any]]:
    """A child collection as served: {"rows": [...]}, {"rows-i": [...]} or a bare list."""
    container = record.get(child)
    if isinstance(container, dict):
        container = container.get("rows", container.get("rows-i"))
    return [row for row in container if isinstance(row, dict)] if isinstance(container, list) else []


def number(record: dict[str, Any], field: str) -> Decimal:
    """A number; empty or absent is 0, anything unreadable makes the record invalid."""
    value = record.get(field)
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise InvalidRecord(f"{field} is not a number: {value!r}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidRecord(f"{field} is not a number: {value!r}") from None
    if not result.is_finite():
        raise InvalidRecord(f"{field} is not a finite number: {value!r}")
    return result


def quantity(record: dict[str, Any], field: str) -> int:
    value = number(record, field)
    if value < 0 or value != value.to_integral_value():
        raise InvalidRecord(f"{field} is not a whole, non-negative quantity: {record.get(field)!r}")
    return int(value)


def local(value: str, formats: tuple[str, ...] = ()) -> datetime:
    """A time as written: in the first of `formats` (strptime) that reads it, else ISO 8601."""
    for fmt in formats:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRecord(f"impossible date {value!r}") from None


def instant(value: str, zone: ZoneInfo, formats: tuple[str, ...] = ()) -> datetime | None:
    """A tenant-local wall time (fold=0: an ambiguous time is its first occurrence, a non-existent one is
    read with the offset before the gap) or a time with its own offset, as a UTC instant; "" is None.
    `formats`: the dialect's own ways of writing a time, tried before ISO 8601."""
    if not value:
        return None
    parsed = local(value, formats)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone, fold=0)
    return parsed.astimezone(UTC)


def normal_email(value: str) -> str | None:
    """Trimmed and lower-cased, or None when it does not look like an address."""
    email = value.strip().lower()
    return email if len(email) <= 254 and EMAIL.match(email) else None


def e164(value: str, region: str) -> str | None:
    """The phone in E.164 (national numbers read in `region`), or None when it is not a valid number."""
    if not value.strip():
        return None
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def cents(value: Decimal) -> float:
    return float(value.quantize(CENT))
