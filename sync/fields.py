"""Reading ERP fields the way the tenant mapping says (docs/configuration.md, "Tenant dialects"): normalisers,
predicates and address layouts. Every parser and the change fingerprints go through these, so a record reads
the same wherever it is read.

- `normalised(record, table)`: the record with the table's `normalise` applied to its raw values (child rows and
  flat addresses included), before it is fingerprinted or parsed;
- `holds(predicate, record)`: a lifecycle fact such as "shipped when the ship date is present";
- `addresses(record, spec)`: the record's bill-to and ship-to, as child rows or flat prefixed fields, each as
  one row keyed by the table's ERP field names, so the parsers read both layouts alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Mapping as AnyMapping
from typing import Any

from config.mapping import AddressFields, FieldTable, LineFields, Predicate

Record = AnyMapping[str, Any]


def _strip_leading_zeros(text: str) -> str:
    stripped = text.lstrip("0")
    return stripped if stripped or not text else "0"


NORMALISERS: dict[str, Callable[[str], str]] = {
    "trim": str.strip,
    "upper": str.upper,
    "lower": str.lower,
    "strip_leading_zeros": _strip_leading_zeros,
}


def normalise_value(value: Any, steps: Iterable[str]) -> Any:
    """Text through each normaliser in turn; any other value (a JSON number, null) as it is."""
    if not isinstance(value, str):
        return value
    for step in steps:
        value = NORMALISERS[step](value)
    return value


def normalised(record: Record, table: FieldTable) -> Record:
    """The record with the table's normalisers applied (the same object when the table has none)."""
    if not table.normalising:
        return record
    out = dict(record)
    _apply(out, table, "")
    for name in type(table).model_fields:
        sub = getattr(table, name)
        if isinstance(sub, AddressFields) and sub.layout == "flat":
            for prefix in (sub.bill_to_prefix, sub.ship_to_prefix):
                _apply(out, sub, prefix)
        elif isinstance(sub, LineFields | AddressFields) and sub.normalising and sub.rows in out:
            out[sub.rows] = _map_rows(out[sub.rows], _normaliser_of(sub))
    return out


def _normaliser_of(table: FieldTable) -> Callable[[Record], Record]:
    return lambda row: normalised(row, table)


def _apply(out: dict[str, Any], table: FieldTable, prefix: str) -> None:
    for key, steps in table.normalise.items():
        name = getattr(table, key)
        if name and f"{prefix}{name}" in out:
            out[f"{prefix}{name}"] = normalise_value(out[f"{prefix}{name}"], steps)


def _map_rows(container: Any, change: Callable[[Record], Record]) -> Any:
    """The child collection with each row changed, in the shape it came in ({"rows"|"rows-i": [...]} or a list)."""
    if isinstance(container, list):
        return [change(row) if isinstance(row, AnyMapping) else row for row in container]
    if isinstance(container, AnyMapping):
        return {k: _map_rows(v, change) if k in ("rows", "rows-i") else v for k, v in container.items()}
    return container


def field_text(record: Record, name: str) -> str:
    """A field's value as stripped text ("" when the field is absent from the mapping or the record)."""
    if not name:
        return ""
    value = record.get(name)
    return "" if value is None else str(value).strip()


def read_text(record: Record, table: FieldTable, key: str) -> str:
    """The field `key` of `table` as the parsers read it: after the table's normalisers, stripped."""
    return field_text(normalised(record, table), getattr(table, key))


def holds(predicate: Predicate, record: Record) -> bool:
    value = field_text(record, predicate.field)
    if predicate.equals is not None:
        return value == predicate.equals
    if predicate.in_ is not None:
        return value in predicate.in_
    return bool(value) if predicate.present else not value


def child_rows(container: Any) -> list[Any] | None:
    """A child collection's rows: {"rows": [...]}, {"rows-i": [...]} or a bare list; [] when missing, None when
    it is something else."""
    if container is None:
        return []
    if isinstance(container, AnyMapping):
        container = container.get("rows", container.get("rows-i", []))
    return container if isinstance(container, list) else None


ADDRESS_KINDS = ("bill_to", "ship_to")


def addresses(record: Record, spec: AddressFields) -> dict[str, Record]:
    """The record's first bill-to and ship-to ("bill_to" / "ship_to" -> a row read with the spec's ERP field
    names). Rows layout: the child rows whose `addr_type` is the spec's bill_to / ship_to value (other address
    types are not ours). Flat layout: the record's `<prefix><field>` values; a type with every field empty is
    no address."""
    found: dict[str, Record] = {}
    if spec.layout == "flat":
        for kind, prefix in (("bill_to", spec.bill_to_prefix), ("ship_to", spec.ship_to_prefix)):
            row = {name: record.get(f"{prefix}{name}") for name in _names(spec)}
            if any(value not in (None, "") and str(value).strip() for value in row.values()):
                found[kind] = row
        return found
    codes = {spec.bill_to: "bill_to", spec.ship_to: "ship_to"}
    for row in child_rows(record.get(spec.rows)) or []:
        if not isinstance(row, AnyMapping):
            continue
        kind = codes.get(field_text(row, spec.addr_type), "")
        if kind and kind not in found:
            found[kind] = row
    return found


def _names(spec: AddressFields) -> list[str]:
    """The ERP names of an address's value fields (not the type field), absent ones left out."""
    return [getattr(spec, key) for key in type(spec).field_keys() if key != "addr_type" and getattr(spec, key)]
