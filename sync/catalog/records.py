"""Typed Style and SKU records, parsed from raw Blue Cherry `style` records through the mapping.

Every field name read comes from `config.mapping.StyleFields`; the SKU matrix is the child collection
`fields.style.skus` (under `"rows-i"`, as the ERP returns it; `"rows"` or a bare list are accepted too).
A record that cannot be used raises `RecordError` naming the record and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from config.mapping import US_STAMP_FORMATS, StyleFields
from sync.catalog.values import code, decimal, stamp
from sync.fields import normalised
from sync.misfits import Misfit, unknown_status


class RecordError(ValueError):
    """A raw ERP record the domain cannot use; `record` says which one ('style:S100'). `misfits`: the mapping
    problems behind it (a status the mapping does not name: `sync.misfits`)."""

    def __init__(self, record: str, reason: str, misfits: tuple[Misfit, ...] = ()) -> None:
        super().__init__(f"{record}: {reason}")
        self.record = record
        self.reason = reason
        self.misfits = misfits


class SkuKey(NamedTuple):
    """A SKU as Blue Cherry identifies it: style + colour + label + dimension + size."""

    style: str
    color: str
    label: str
    dimension: str
    size: str

    @property
    def text(self) -> str:
        """'S100-BLK--32-M': the key high-demand lists name and patterns match (empty parts stay empty)."""
        return "-".join(self)


@dataclass(frozen=True, slots=True)
class Sku:
    key: SkuKey
    color_name: str
    upc: str
    ean: str
    status: str
    price: Decimal | None
    discontinued: bool
    raw: MappingABC[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Style:
    style: str
    name: str
    description: str
    brand: str
    category: str
    gender: str
    division: str
    season: str
    price: Decimal | None
    status: str
    discontinued: bool
    last_mod: datetime | None
    skus: tuple[Sku, ...]
    raw: MappingABC[str, Any] = field(repr=False, compare=False)


def child_rows(raw: MappingABC[str, Any], collection: str) -> list[Any]:
    """The rows of a child collection: `{"rows-i": [...]}`, `{"rows": [...]}` or a bare list."""
    value = raw.get(collection)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, MappingABC):
        rows = value.get("rows-i", value.get("rows", []))
        if isinstance(rows, list):
            return rows
    raise ValueError(f"{collection}: expected rows, got {type(value).__name__}")


def parse_style(raw: Any, fields: StyleFields, last_mod_field: str = "last_mod",
                date_formats: Sequence[str] = US_STAMP_FORMATS) -> Style:
    """A typed `Style` from one raw style record (after the mapping's normalisers; dates in ISO or one of
    `date_formats`, the style resource's); raises `RecordError` for anything unusable."""
    if not isinstance(raw, MappingABC):
        raise RecordError("style:?", f"expected an object, got {type(raw).__name__}")
    raw = normalised(raw, fields)
    style_code = code(raw.get(fields.style))
    record = f"style:{style_code or '?'}"
    if not style_code:
        raise RecordError(record, f"no style code in field '{fields.style}'")
    try:
        status = code(raw.get(fields.status))
        discontinued = status in fields.discontinued_values
        rows = child_rows(raw, fields.skus)
        skus = tuple(_parse_sku(style_code, row, fields, n) for n, row in enumerate(rows, start=1))
        seen: set[SkuKey] = set()
        for sku in skus:
            if sku.key in seen:
                raise ValueError(f"SKU {sku.key.text} appears twice in '{fields.skus}'")
            seen.add(sku.key)
        unknown = _unknown_statuses(record, status, skus, fields)
        if unknown:
            raise RecordError(record, "; ".join(m.reason for m in unknown), unknown)
        return Style(
            style=style_code,
            name=code(raw.get(fields.name)),
            description=code(raw.get(fields.description)),
            brand=code(raw.get(fields.brand)),
            category=code(raw.get(fields.category)),
            gender=code(raw.get(fields.gender)),
            division=code(raw.get(fields.division)),
            season=code(raw.get(fields.season)),
            price=decimal(raw.get(fields.price), fields.price),
            status=status,
            discontinued=discontinued,
            last_mod=stamp(raw.get(last_mod_field), last_mod_field, date_formats),
            skus=skus,
            raw=raw,
        )
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError(record, str(exc)) from None


def _unknown_statuses(record: str, status: str, skus: tuple[Sku, ...], fields: StyleFields) -> tuple[Misfit, ...]:
    """Statuses of the style and its SKUs that the mapping does not name, once the tenant listed its statuses
    (`fields.style.status_values`; empty: not checked, any status not discontinued is active)."""
    if not fields.status_values:
        return ()
    known = fields.status_values + fields.discontinued_values
    found = {(fields.status, status)} | {(f"{fields.skus}.{fields.sku_status}", sku.status) for sku in skus}
    return tuple(unknown_status("style", where, value, record, known, "fields.style.status_values")
                 for where, value in sorted(found) if value and value not in known)


def _parse_sku(style_code: str, row: Any, fields: StyleFields, number: int) -> Sku:
    if not isinstance(row, MappingABC):
        raise ValueError(f"{fields.skus} row {number}: expected an object, got {type(row).__name__}")
    key = SkuKey(
        style=style_code,
        color=code(row.get(fields.sku_color)),
        label=code(row.get(fields.sku_label)),
        dimension=code(row.get(fields.sku_dimension)),
        size=code(row.get(fields.sku_size)),
    )
    if not key.color and not key.size:
        raise ValueError(f"{fields.skus} row {number}: neither colour nor size")
    status = code(row.get(fields.sku_status))
    return Sku(
        key=key,
        color_name=code(row.get(fields.sku_color_name)),
        upc=code(row.get(fields.sku_upc)),
        ean=code(row.get(fields.sku_ean)),
        status=status,
        price=decimal(row.get(fields.sku_price), f"{fields.skus} row {number} {fields.sku_price}"),
        discontinued=status in fields.discontinued_values,
        raw=row,
    )
