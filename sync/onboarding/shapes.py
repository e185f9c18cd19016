"""What a sample of ERP values looks like: e-mail addresses, phone numbers, yes/no flags, dates (and in which
strptime formats), money, whole numbers, UPCs, codes (padded or not) - per value and per field.

`profile_records` profiles every field of a list of records, and the rows of their child collections
(`{"rows": [...]}`, `{"rows-i": [...]}` or a bare list of objects) as tables of their own. `check` uses it to
say which unmapped field looks like a mapped concept, `suggest` to guess the mapping from a sample.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sync.customers.validation import EMAIL, e164

# Yes/no vocabularies seen in ERPs (compared case-insensitively); letters are surer than 1/0, which a quantity
# column of ones and zeros also shows.
YES_NO_LETTERS = frozenset({"y", "n", "yes", "no", "t", "f", "true", "false"})
YES_NO_DIGITS = frozenset({"1", "0"})
YES_WORDS = frozenset({"y", "yes", "t", "true", "1", "x"})

# strptime formats a tenant's dates are written in, by family (tried after ISO 8601, which the product always
# reads). Within a family the longer forms come first: a value is read by the first format that takes it whole.
DATE_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%m/%d/%Y"),  # US: Blue Cherry's reports
    ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"),
    ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"),
    ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d"),
    ("%m-%d-%Y %H:%M:%S", "%m-%d-%Y"),
    ("%d-%b-%Y %H:%M:%S", "%d-%b-%Y"),
)
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DATE_LIKE = re.compile(r"^\d{1,4}[-/.]\s?(\d{1,2}|[A-Za-z]{3})[-/.]\d{1,4}")
_INTEGER = re.compile(r"^[-+]?\d{1,9}$")
_DECIMAL = re.compile(r"^[-+]?\d{1,12}(\.\d+)?$")
_MONEY = re.compile(r"^[-+]?\d{1,12}\.\d{2}$")
_UPC = re.compile(r"^\d{11,14}$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-/]{7,22}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/#]{0,19}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

KINDS = ("email", "phone", "flag", "flag_digit", "date", "datetime", "money", "integer", "decimal", "upc",
         "code", "currency", "text", "alpha")


def text_of(value: Any) -> str:
    """A value as the parsers read it: stripped text ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def is_email(text: str) -> bool:
    return bool(EMAIL.match(text))


@lru_cache(maxsize=4096)
def is_phone(text: str, region: str = "US") -> bool:
    """A number the product would send as a phone (E.164 valid for `region`), not a UPC or a money amount."""
    if not _PHONE_CHARS.match(text) or _MONEY.match(text) or _UPC.match(text):
        return False
    digits = sum(c.isdigit() for c in text)
    if not 7 <= digits <= 15:
        return False
    try:
        e164(text, region)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=8192)
def date_formats_reading(text: str) -> tuple[str, ...] | None:
    """The candidate formats that read `text` whole; () when ISO 8601 reads it; None when it is no date."""
    if _ISO_START.match(text):
        try:
            datetime.fromisoformat(text)
            return ()
        except ValueError:
            return None
    if not _DATE_LIKE.match(text):
        return None
    found = []
    for family in DATE_FAMILIES:
        for fmt in family:
            try:
                datetime.strptime(text, fmt)
            except ValueError:
                continue
            found.append(fmt)
    return tuple(found) or None


def kinds_of(value: Any, region: str = "US") -> frozenset[str]:
    """Every kind a (non-empty) value fits."""
    if isinstance(value, bool):
        return frozenset({"flag"})
    text = text_of(value)
    kinds = _number_kinds(value, text) | _text_kinds(text)
    lower = text.lower()
    if lower in YES_NO_LETTERS:
        kinds.add("flag")
    if lower in YES_NO_DIGITS:
        kinds.add("flag_digit")
    if "@" in text and is_email(text):
        kinds.add("email")
    if isinstance(value, str) and is_phone(text, region):
        kinds.add("phone")
    if isinstance(value, str) and date_formats_reading(text) is not None:
        kinds.add("date")
        if _has_time(text):
            kinds.add("datetime")
    return frozenset(kinds)


def _number_kinds(value: Any, text: str) -> set[str]:
    kinds = set()
    if isinstance(value, int) or _INTEGER.match(text):
        kinds.add("integer")
    if isinstance(value, int | float) or _DECIMAL.match(text):
        kinds.add("decimal")
    if isinstance(value, float) or _MONEY.match(text):
        kinds.add("money")
    if _UPC.match(text):
        kinds.add("upc")
    return kinds


def _text_kinds(text: str) -> set[str]:
    kinds = set()
    if _CURRENCY.match(text):
        kinds.add("currency")
    if _CODE.match(text):
        kinds.add("code")
    if any(c.isalpha() for c in text):
        kinds.add("alpha")
    if " " in text or len(text) > 20:
        kinds.add("text")
    return kinds


def _has_time(text: str) -> bool:
    return bool(re.search(r"\d{1,2}:\d{2}", text))


def pattern_of(text: str) -> str:
    """The value's shape: digits as 9, letters as A, the rest kept ('C0000042' -> 'A9999999')."""
    return re.sub(r"[A-Za-z]", "A", re.sub(r"\d", "9", text))


@dataclass(frozen=True)
class FieldProfile:
    """One field over a sample: how often it is there and filled, and the share of its filled values of each
    kind (`share`)."""

    name: str
    total: int
    missing: int
    empty: int
    texts: tuple[str, ...]  # the filled values as stripped text, in sample order
    share: Mapping[str, float]
    padded: float  # share of filled string values with surrounding spaces
    upper: float  # share of filled values with letters, all upper-case
    is_bool: bool = False
    numeric: float = 0.0  # share of filled values that are JSON numbers (not numeric strings)
    position: int = 0  # the column's place in the record (first seen)

    @property
    def filled(self) -> int:
        return len(self.texts)

    @property
    def present(self) -> int:
        """Records that have the column at all (filled or blank)."""
        return self.total - self.missing

    @property
    def fill(self) -> float:
        return self.filled / self.total if self.total else 0.0

    @property
    def distinct(self) -> int:
        return len(set(self.texts))

    @property
    def unique(self) -> bool:
        return self.filled > 0 and self.distinct == self.filled

    def looks(self, kind: str) -> float:
        return self.share.get(kind, 0.0)

    def counts(self) -> Counter[str]:
        return Counter(self.texts)

    def examples(self, n: int = 3) -> tuple[str, ...]:
        seen: list[str] = []
        for text in self.texts:
            if text not in seen:
                seen.append(text)
            if len(seen) == n:
                break
        return tuple(seen)

    def flag_values(self) -> frozenset[str] | None:
        """The field's values when it reads as a yes/no flag: at most two distinct values (case as written),
        all from one yes/no vocabulary; None otherwise."""
        if not self.filled:
            return None
        values = frozenset(self.texts)
        lowered = {v.lower() for v in values}
        if len(lowered) > 2:
            return None
        if self.is_bool or lowered <= YES_NO_LETTERS or lowered <= YES_NO_DIGITS:
            return values
        return None

    def date_formats(self) -> tuple[str, ...] | None:
        """The formats that read every filled value (in one family; () = ISO alone), or None when a value is no
        date. Day-month order is told by a value whose first part cannot be a month; where none can tell, the
        US order (Blue Cherry's) is taken."""
        if not self.filled or self.looks("date") < 1.0:
            return None
        return formats_for(self.texts)

    def has_time(self) -> bool:
        return self.looks("datetime") >= 0.5


def formats_for(texts: Iterable[str]) -> tuple[str, ...] | None:
    """The fewest formats of one family reading every text (ISO ones need none), or None."""
    others = [t for t in texts if date_formats_reading(t) not in ((), None)]
    if any(date_formats_reading(t) is None for t in texts):
        return None
    if not others:
        return ()
    for family in DATE_FAMILIES:
        used: list[str] = []
        for text in others:
            fmt = next((f for f in family if f in (date_formats_reading(text) or ())), None)
            if fmt is None:
                break
            if fmt not in used:
                used.append(fmt)
        else:
            return tuple(f for f in family if f in used)
    return None


def profile_field(name: str, values: Sequence[Any], region: str = "US", position: int = 0) -> FieldProfile:
    """`values`: one entry per record, `MISSING` where the record has no such column."""
    total = len(values)
    missing = sum(1 for v in values if v is MISSING)
    present = [v for v in values if v is not MISSING]
    filled = [v for v in present if not is_empty(v) and not isinstance(v, dict | list)]
    counts: Counter[str] = Counter()
    for value in filled:
        counts.update(kinds_of(value, region))
    texts = tuple(text_of(v) for v in filled)
    strings = [v for v in present if isinstance(v, str) and v]  # a blank CHAR column is padded too
    lettered = [t for t in texts if any(c.isalpha() for c in t)]
    return FieldProfile(
        name=name, total=total, missing=missing, empty=len(present) - len(filled), texts=texts,
        share={kind: counts[kind] / len(filled) for kind in KINDS} if filled else {},
        padded=sum(1 for v in strings if v != v.strip()) / len(strings) if strings else 0.0,
        upper=sum(1 for t in lettered if t == t.upper()) / len(lettered) if lettered else 0.0,
        is_bool=bool(filled) and all(isinstance(v, bool) for v in filled),
        numeric=sum(1 for v in filled if isinstance(v, int | float) and not isinstance(v, bool)) / len(filled)
        if filled else 0.0,
        position=position,
    )


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def child_rows(value: Any) -> tuple[list[Mapping[str, Any]], str] | None:
    """A child collection's rows and its container ('rows', 'rows-i' or 'list'); None when `value` is none."""
    if isinstance(value, Mapping):
        for container in ("rows", "rows-i"):
            rows = value.get(container)
            if isinstance(rows, list) and all(isinstance(r, Mapping) for r in rows):
                return rows, container
        return None
    if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
        return value, "list"
    return None


@dataclass(frozen=True)
class TableProfile:
    """Every field of a set of records (in first-seen order), and the rows of each child collection."""

    records: int
    fields: Mapping[str, FieldProfile]
    children: Mapping[str, TableProfile] = field(default_factory=dict)
    containers: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.fields)


def profile_records(records: Sequence[Mapping[str, Any]], region: str = "US") -> TableProfile:
    names: list[str] = []
    child_names: list[str] = []
    for record in records:
        for name, value in record.items():
            if isinstance(value, dict | list):
                if name not in child_names:
                    child_names.append(name)
            elif name not in names:
                names.append(name)
    flat = [name for name in names if name not in child_names]
    fields = {name: profile_field(name, [r.get(name, MISSING) for r in records], region, position)
              for position, name in enumerate(flat)}
    children: dict[str, TableProfile] = {}
    containers: dict[str, str] = {}
    for name in child_names:
        rows: list[Mapping[str, Any]] = []
        for record in records:
            found = child_rows(record.get(name))
            if found is not None:
                rows += found[0]
                containers.setdefault(name, found[1])
        if rows:
            children[name] = profile_records(rows, region)
    return TableProfile(len(records), fields, children, containers)
