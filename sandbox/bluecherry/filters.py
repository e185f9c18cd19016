"""The OData-like ``$filter`` of bcapi, compiled to an SQL condition over the record store.

Grammar: ``<field> <op> <value> [and <field> <op> <value> ...]`` with ops ``eq ne gt ge lt le``, values
quoted with single quotes (``''`` escapes a quote) or bare numbers. ``last_mod`` and ``pkey`` use the indexed
columns; any other field compares the record's top-level JSON value.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.bluecherry.clock import STAMP, parse_local

OPS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
CLAUSE = re.compile(
    r"\s*(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<op>[A-Za-z]+)\s+"
    r"(?P<value>'(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*(?P<rest>(?:and\s+.*)?)$",
    re.IGNORECASE | re.DOTALL,
)


class FilterError(ValueError):
    pass


def compile_filter(text: str | None) -> tuple[str, list[Any]]:
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
        if field == "last_mod":
            if not isinstance(value, str):
                raise FilterError(f"$filter: last_mod needs a quoted time, got {raw}")
            try:
                value = parse_local(value).strftime(STAMP)
            except ValueError as exc:
                raise FilterError(f"$filter: {exc}") from None
            conditions.append(f"last_mod {OPS[op]} ?")
        elif field == "pkey":
            conditions.append(f"pkey {OPS[op]} ?")
            value = int(value)
        else:
            conditions.append(f"json_extract(body, '$.{field}') {OPS[op]} ?")
        params.append(value)
        rest = match["rest"]
        remaining = rest[3:].lstrip() if rest else ""
        if rest and not remaining:
            raise FilterError("$filter: 'and' must be followed by a condition")
    return " AND ".join(conditions), params
