"""CSV report drops, for tenants without API access: the inventory report and the style master export.

Each file becomes raw records in exactly the shape the REST `inventory` and `style` resources return,
under the tenant's field names from the mapping, so the domain computes the same available-to-sell figures
and catalog operations from either path. Report headers are matched case- and space-insensitively against
the aliases in `INVENTORY_COLUMNS` / `STYLE_COLUMNS` (keys are mapping attribute names; pass your own
to the readers for a report laid out differently).

Encodings: a UTF-8 or UTF-16 BOM decides; otherwise clean UTF-8 is UTF-8, UTF-8 with a few bad bytes is
still UTF-8, and anything else is cp1252 (what Windows report exports write). A byte that cannot be decoded
never stops the reader: its row becomes a `RowProblem` (file, line, reason) and the rest of the file goes
on, like any other bad row.

"Once only": a file's identity is name + size + sha256 (`file_id`); a `DropTracker` remembers processed
ids. Call `mark` only after the records are safely handed on, so a crash in between reprocesses the file
(harmless: the domain's operations are idempotent and newest-wins).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import redis

from config.mapping import InventoryFields, Mapping, StyleFields

ReportKind = Literal["inventory", "style"]
LAST_MOD = "last_mod"  # pseudo-attribute: the resource's last_mod field (mapping.resources.<r>.last_mod)

# mapping attribute -> header aliases; the first alias is what the Blue Cherry export calls it
INVENTORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "style": ("Style",),
    "color_code": ("Color #", "Color"),
    "lbl_code": ("Label",),
    "dimension": ("Dm/Pk", "Dimension"),
    "size_desc": ("Size",),
    "upc": ("UPC Number", "UPC"),
    "warehouse": ("Location",),
    "on_hand": ("Total QOH",),
    "picked": ("Total Pick",),
    "available_on_hand": ("Avail QOH",),
    "open_orders": ("Total Open",),
    "ats": ("ATS", "Avail To Sell"),
    LAST_MOD: ("Last Mod", "Last Modified"),
}
INVENTORY_REQUIRED = ("style", "warehouse")
INVENTORY_NUMBERS = frozenset({"on_hand", "picked", "available_on_hand", "open_orders", "ats"})

# style-level attributes of StyleFields, then SKU-level ones (prefixed sku_)
STYLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "style": ("Style",),
    "name": ("Style Name",),
    "description": ("Style Desc", "Description"),
    "brand": ("BRAND", "Brand"),
    "category": ("Category",),
    "gender": ("Gender",),
    "division": ("Div", "Division"),
    "season": ("Season",),
    "price": ("Style Price",),
    "status": ("Style Status",),
    "sku_color": ("Color #", "Color"),
    "sku_color_name": ("Color Name",),
    "sku_label": ("Label",),
    "sku_dimension": ("Dm/Pk", "Dimension"),
    "sku_size": ("Size", "Size Desc"),  # "SIZES" is the style's size range (e.g. "S-M-L"), not the size
    "sku_upc": ("UPC Number", "UPC"),
    "sku_ean": ("EAN",),
    "sku_status": ("SKU Status", "Status"),
    "sku_price": ("Retail Price", "Price"),
    LAST_MOD: ("Last Mod", "Last Modified"),
}
STYLE_REQUIRED = ("style",)
STYLE_NUMBERS = frozenset({"price", "sku_price"})
_STYLE_SKIP = frozenset({"skus", "discontinued_values"})

_NUMBER = re.compile(r"^\(?-?[\d,]*\.?\d*\)?-?$")


@dataclass(frozen=True)
class RowProblem:
    """A row (or, with line 1 and no records, a whole file) the reader could not use."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class DropResult:
    file: str
    file_id: str
    kind: ReportKind
    encoding: str
    observed_at: datetime  # the report's as-of time (file modification time, UTC)
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


class CsvDropError(ValueError):
    """A file that is not a report this reader knows (no recognisable header)."""


# --- identity and once-only bookkeeping --------------------------------------------------------
def file_id(path: Path, data: bytes | None = None) -> str:
    """'<name>:<size>:<sha256>': the same content under the same name is the same drop."""
    data = Path(path).read_bytes() if data is None else data
    return f"{Path(path).name}:{len(data)}:{hashlib.sha256(data).hexdigest()}"


class DropTracker(Protocol):
    def seen(self, file_id: str) -> bool: ...

    def mark(self, file_id: str) -> None: ...


class MemoryDropTracker:
    """For tests and one-shot runs: forgets everything when the process ends."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def seen(self, file_id: str) -> bool:
        return file_id in self._ids

    def mark(self, file_id: str) -> None:
        self._ids.add(file_id)


class RedisDropTracker:
    """Processed drops in Redis, one key per file id with a retention, so restarts never reprocess."""

    def __init__(self, client: redis.Redis, prefix: str = "bcsync:csvdrop:", ttl_days: int = 400) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_days * 86400

    def seen(self, file_id: str) -> bool:
        return bool(self.client.exists(self.prefix + file_id))

    def mark(self, file_id: str) -> None:
        self.client.set(self.prefix + file_id, datetime.now(UTC).isoformat(), ex=self.ttl_seconds)


def pending_drops(folder: Path, tracker: DropTracker, pattern: str = "*.csv") -> list[Path]:
    """The files in `folder` not yet processed, oldest first."""
    files = sorted(Path(folder).glob(pattern), key=lambda p: (p.stat().st_mtime, p.name))
    return [path for path in files if not tracker.seen(file_id(path))]


# --- decoding ----------------------------------------------------------------------------------
def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding). Undecodable bytes survive as lone surrogates so their rows can be reported."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", "surrogateescape"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "surrogateescape")
    if any(ord(ch) > 0x7F and not 0xDC80 <= ord(ch) <= 0xDCFF for ch in text):
        return text, "utf-8"  # real multi-byte characters decode: UTF-8 with a few bad bytes
    return data.decode("cp1252", "surrogateescape"), "cp1252"


def _bad_byte(value: str) -> str | None:
    for ch in value:
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            return f"undecodable byte 0x{ord(ch) - 0xDC00:02X}"
        if ch in "\x00\ufffd":
            return "undecodable or NUL byte"
    return None


# --- rows --------------------------------------------------------------------------------------
def _norm(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").split()).casefold()


def _number(text: str) -> int | float | None:
    """'1,234' -> 1234, '(5)' and '5-' -> -5, '' -> None; ValueError for anything else."""
    text = text.strip()
    if not text:
        return None
    if not _NUMBER.match(text) or not any(ch.isdigit() for ch in text):
        raise ValueError(f"not a number: {text!r}")
    negative = text.startswith("(") and text.endswith(")") or text.endswith("-") or text.startswith("-")
    value = float(text.strip("()-").replace(",", ""))
    value = -value if negative else value
    return int(value) if value.is_integer() else value


@dataclass
class _Table:
    name: str
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]


def _table(name: str, text: str) -> _Table:
    first = text.split("\n", 1)[0]
    delimiter = max(",\t;|", key=first.count)
    reader = csv.reader(io.StringIO(text.replace("\x00", "\ufffd"), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvDropError(f"{name}: empty file") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, [f"\x00csv: {exc}"]
                continue
            yield reader.line_num, row

    return _Table(name, header, rows())


def _columns(
    table: _Table, spec: MappingABC[str, tuple[str, ...]], required: tuple[str, ...]
) -> dict[str, int]:
    positions = {_norm(h): i for i, h in reversed(list(enumerate(table.header)))}
    found: dict[str, int] = {}
    for attr, aliases in spec.items():
        for alias in aliases:
            if _norm(alias) in positions:
                found[attr] = positions[_norm(alias)]
                break
    missing = [spec[attr][0] for attr in required if attr not in found]
    if missing:
        raise CsvDropError(f"{table.name}: header lacks column(s) {', '.join(missing)}")
    return found


def _cells(
    table: _Table, columns: dict[str, int], numbers: frozenset[str], problems: list[RowProblem]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each good row as {attribute: value}; every bad row becomes a problem and is skipped."""
    width = len(table.header)
    for line, row in table.rows:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if row and row[0].startswith("\x00csv: "):
            problems.append(RowProblem(table.name, line, row[0][6:]))
            continue
        if len(row) != width:
            problems.append(RowProblem(table.name, line, f"{len(row)} columns, the header has {width}"))
            continue
        try:
            values: dict[str, Any] = {}
            for attr, index in columns.items():
                cell = row[index]
                bad = _bad_byte(cell)
                if bad:
                    raise ValueError(f"{bad} in column '{table.header[index].strip()}'")
                values[attr] = _number(cell) if attr in numbers else cell.strip()
        except ValueError as exc:
            problems.append(RowProblem(table.name, line, str(exc)))
            continue
        yield line, values


# --- the two reports ---------------------------------------------------------------------------
def _open(
    path: Path, kind: ReportKind, columns: MappingABC[str, tuple[str, ...]], required: tuple[str, ...]
) -> tuple[DropResult, _Table, dict[str, int]]:
    data = Path(path).read_bytes()
    text, encoding = decode(data)
    observed_at = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    name = Path(path).name
    result = DropResult(name, file_id(path, data), kind, encoding, observed_at)
    table = _table(name, text)
    return result, table, _columns(table, columns, required)


def read_inventory_report(
    path: Path, mapping: Mapping, columns: MappingABC[str, tuple[str, ...]] = INVENTORY_COLUMNS
) -> DropResult:
    """Inventory report rows -> raw `inventory` records (one per SKU per warehouse)."""
    result, table, found = _open(path, "inventory", columns, INVENTORY_REQUIRED)
    name = result.file
    fields: InventoryFields = mapping.fields.inventory
    last_mod = mapping.resources.inventory.last_mod
    for line, values in _cells(table, found, INVENTORY_NUMBERS, result.problems):
        if not values.get("style") or not values.get("warehouse"):
            result.problems.append(RowProblem(name, line, "no Style or no Location"))
            continue
        record: dict[str, Any] = {}
        for attr, value in values.items():
            if attr == LAST_MOD:
                record[last_mod] = value or None
            elif attr == "ats":
                if fields.ats:
                    record[fields.ats] = value
            else:
                record[getattr(fields, attr)] = value
        result.records.append(record)
    return result


def read_style_master(
    path: Path, mapping: Mapping, columns: MappingABC[str, tuple[str, ...]] = STYLE_COLUMNS
) -> DropResult:
    """Style master rows (one per SKU) -> raw `style` records with their SKU matrix under rows-i."""
    result, table, found = _open(path, "style", columns, STYLE_REQUIRED)
    name = result.file
    fields: StyleFields = mapping.fields.style
    last_mod = mapping.resources.style.last_mod
    styles: dict[str, dict[str, Any]] = {}
    for line, values in _cells(table, found, STYLE_NUMBERS, result.problems):
        code = values.get("style")
        if not code:
            result.problems.append(RowProblem(name, line, "no Style"))
            continue
        if not values.get("sku_color") and not values.get("sku_size"):
            result.problems.append(RowProblem(name, line, f"style {code}: neither colour nor size"))
            continue
        record = styles.setdefault(code, {fields.skus: {"rows-i": []}})
        sku: dict[str, Any] = {}
        for attr, value in values.items():
            if attr == LAST_MOD:
                if value and (record.get(last_mod) is None or str(value) > str(record[last_mod])):
                    record[last_mod] = value
            elif attr.startswith("sku_"):
                sku[getattr(fields, attr)] = value
            elif attr not in _STYLE_SKIP:
                key = getattr(fields, attr)
                if record.get(key) in ("", None):  # the first non-empty value of the style wins
                    record[key] = value
        record[fields.skus]["rows-i"].append(sku)
    result.records.extend(styles.values())
    return result


def report_kind(path: Path) -> ReportKind:
    """Which report a file is, from its header: QOH columns mean inventory, a Style Name column style."""
    with open(path, "rb") as handle:
        head, _ = decode(handle.read(8192))
    header = {_norm(h) for h in re.split(r"[,\t;|]", head.split("\n", 1)[0])}
    if {"total qoh", "avail qoh"} & {h.strip('"') for h in header}:
        return "inventory"
    if "style name" in {h.strip('"') for h in header}:
        return "style"
    raise CsvDropError(
        f"{Path(path).name}: neither an inventory report nor a style master (header {head[:80]!r})"
    )


def read_drop(path: Path, mapping: Mapping) -> DropResult:
    """Read one drop of either kind; a file that cannot be read at all raises `CsvDropError`."""
    if report_kind(path) == "inventory":
        return read_inventory_report(path, mapping)
    return read_style_master(path, mapping)
