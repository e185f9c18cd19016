"""Field checks for ERP text, e-mail addresses, phone numbers and dates. Each returns a reason or None."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers

from sync.localtime import LocalTimeError, read_erp_datetime

MAX_TEXT = 255  # longest name/address/code accepted from the ERP
MAX_EMAIL = 254  # RFC 5321 path limit
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
EARLIEST_YEAR = 1900


def text_problem(value: str, limit: int = MAX_TEXT) -> str | None:
    """Broken text: replacement characters, control characters, mojibake, or longer than `limit`."""
    if "\ufffd" in value:
        return "contains the replacement character U+FFFD (text was decoded with the wrong encoding)"
    controls = [c for c in value if unicodedata.category(c) == "Cc"]
    if controls:
        return f"contains control characters {sorted({hex(ord(c)) for c in controls})}"
    if len(value) > limit:
        return f"is {len(value)} characters long (at most {limit})"
    if is_mojibake(value):
        return f"looks like mojibake (UTF-8 read as cp1252/latin-1): {value[:60]!r}"
    return None


def is_mojibake(value: str) -> bool:
    """True when re-encoding as cp1252/latin-1 and decoding as UTF-8 gives different, valid text.

    'Ã©' -> 'é' is caught; genuine accented text ('é', 'ü') is not valid UTF-8 once re-encoded, so it passes.
    """
    if value.isascii():
        return False
    for codec in ("cp1252", "latin-1"):
        try:
            repaired = value.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if repaired != value:
            return True
    return False


def email_problem(value: str | None) -> str | None:
    if value is None or not value.strip():
        return "email is missing"
    value = value.strip()
    if len(value) > MAX_EMAIL:
        return f"email is {len(value)} characters long (at most {MAX_EMAIL})"
    if not EMAIL.match(value):
        return f"email {value!r} is not a valid address"
    return None


def normalize_email(value: str) -> str:
    """The one form an email is sent and compared in: trimmed, lower-cased (Klaviyo matches emails
    case-insensitively; an upper-case ERP email must name the same profile as its lower-case twin)."""
    return value.strip().lower()


def e164(value: str, region: str) -> str:
    """The phone number in E.164, reading national numbers in `region`; ValueError says why not."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {value!r} cannot be read: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"phone {value!r} is not a valid number (default region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_erp_date(value: str, field: str, formats: Sequence[str] = (), zone: ZoneInfo | None = None) -> datetime:
    """A date or date-time from the ERP as tenant wall time (naive): ISO 8601, else one of `formats`
    (`sync.localtime.read_erp_datetime`); one written with its own UTC offset is moved to `zone` (the tenant's).
    Impossible dates (2026-02-30, year 0201) raise ValueError; one that no format reads, LocalTimeError (a
    ValueError: the mapping may lack the tenant's format)."""
    try:
        parsed = read_erp_datetime(value, formats)
    except ValueError:
        expected = "YYYY-MM-DD[ HH:MM:SS]" + "".join(f" or {fmt}" for fmt in formats)
        raise LocalTimeError(f"{field} {value!r} is not a valid date (expected {expected})") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(zone or UTC).replace(tzinfo=None)
    if parsed.year < EARLIEST_YEAR:
        raise ValueError(f"{field} {value!r} is before {EARLIEST_YEAR}")
    return parsed


