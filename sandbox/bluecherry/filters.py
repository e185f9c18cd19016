"""The OData-like ``$filter`` of bcapi, compiled to an SQL condition over the record store.

Grammar: ``<field> <op> <value> [and <field> <op> <value> ...]`` with ops ``eq ne gt ge lt le``, values
quoted with single quotes (``''`` escapes a quote) or bare numbers. ``last_mod`` and ``pkey`` use the indexed
columns; any other field compares the record's top-level JSON value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.bluecherry.clock import STAMP, parse_local

# A tenant dialect's reading of a field (dialects.Dialect.column): (SQL expression, reader of the value), or
# None for the internal model's own names. ValueError: a field that cannot be filtered.
Resolver = Callable[[str], tuple[str, Callable[[Any], Any]] | None]

OPS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
CLAUSE = re.compile(
    r"\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<op>[A-Za-z]+)\s+"
    r"(?P<value>'(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*(?P<rest>(?:and\s+.*)?)$",
    re.IGNORECASE | re.DOTALL,
)


class FilterError(ValueError):
    pass


def own_column(field: str) -> tuple[str, Callable[[Any], Any]]:
    """A field of the internal model: ``last_mod`` and ``pkey`` are indexed columns, anything else the record's
    top-level JSON value."""
    if field == "last_mod":
        return "last_mod", _local_time
    if field == "pkey":
        return "pkey", int
    return f"json_extract(body, '$.{field}')", lambda value: value


def _local_time(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"needs a quoted time, got {value!r}")
    return parse_local(value).strftime(STAMP)


def compile_filter(text: str | None, resolve: Resolver | None = None) -> tuple[str, list[Any]]:
    """The SQL condition and its parameters; `resolve` names a dialect's fields (default: the model's own)."""
    if not text or not text.strip():
        return "", []
    conditions: list[str] = []
    params: list[Any] = []
    remaining = text
    while remaining:
        match = CLAUSE.match(remaining)
        if match is None:
            raise FilterError(
                f"$filter: cannot read '{remaining.strip()}' "
                "(expected <field> eq|ne|gt|ge|lt|le '<value>' joined with 'and')"
            )
        field, op, raw = match["field"], match["op"].lower(), match["value"]
        if op not in OPS:
            raise FilterError(f"$filter: unknown operator '{match['op']}' (use eq, ne, gt, ge, lt, le)")
        value: Any = raw[1:-1].replace("''", "'") if raw.startswith("'") else float(raw) if "." in raw else int(raw)
        try:
            sql, read = (resolve(field) if resolve is not None else None) or own_column(field)
            params.append(read(value))
        except ValueError as exc:
            raise FilterError(f"$filter: {field}: {exc}") from None
        conditions.append(f"{sql} {OPS[op]} ?")
        rest = match["rest"]
        remaining = rest[3:].lstrip() if rest else ""
        if rest and not remaining:
            raise FilterError("$filter: 'and' must be followed by a condition")
    return " AND ".join(conditions), params
