"""Mapping misfits: a value the tenant mapping cannot read, said once per value or field, not once per record.

A wrong mapping fails thousands of records the same way: a status code the lifecycle does not name, dates in a
format the mapping does not list. Each such record is still an `invalid_record` of its own (what to re-read once
fixed); the misfit is the configuration problem behind them, recorded as ONE exception per status value
(`unknown_status`, record key `<resource>.<field>=<value>`) or per date field (`unparseable_date`, record key
`<resource>.<field>`), with a few example records and the count of times it was seen (docs/operations.md).
The register keeps the first `MAX_EXAMPLES` distinct examples (`state.exceptions.ExceptionRegister.record`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

MisfitType = Literal["unknown_status", "unparseable_date"]
MAX_EXAMPLES = 5  # example records kept per misfit (distinct), so 10,000 failing records stay one readable row
ISO = "ISO 8601 (YYYY-MM-DD[ HH:MM:SS])"


@dataclass(frozen=True)
class Misfit:
    """One value (or field) the mapping cannot read, seen on one record (`example`)."""

    type: MisfitType
    key: str  # the exception's record key: "order.ord_status=Z", "invoice.inv_dt"
    reason: str
    example: dict[str, str]  # {"record": "order:SO1", "value": "Z"}
    details: dict[str, Any] = field(default_factory=dict)

    def exception_details(self) -> dict[str, Any]:
        """What the register keeps: the misfit's details plus its example (accumulated, distinct, capped)."""
        return {**self.details, "examples": [self.example]}


class Sink(Protocol):
    def record(self, type: str, record_key: str, reason: str, severity: Any = "error",
               details: dict[str, Any] | None = None) -> Any: ...


def record_misfits(sink: Sink, misfits: Iterable[Misfit]) -> None:
    """Each misfit into the exception register (one row per value or field; the example is added to it)."""
    for misfit in misfits:
        sink.record(misfit.type, misfit.key, misfit.reason, "error", misfit.exception_details())


def tried(formats: Sequence[str]) -> str:
    """The formats a date was tried with, as an operator reads them: "ISO 8601 (...), '%m/%d/%Y'"."""
    return ", ".join([ISO, *(repr(fmt) for fmt in formats)])


def unparseable_date(resource: str, field_name: str, value: Any, record: str, formats: Sequence[str]) -> Misfit:
    """A date of `resource` in field `field_name` that neither ISO 8601 nor any of the resource's configured
    formats (`Mapping.date_formats(resource)`) reads."""
    text = str(value)
    where = f"{resource}.{field_name}"
    return Misfit(
        "unparseable_date", where,
        f"no configured date format reads {resource} field '{field_name}' (e.g. {text!r} on {record}); tried "
        f"{tried(formats)}: add the tenant's format to resources.{resource}.date_formats or tenant.date_formats "
        "(docs/configuration.md, \"Tenant dialects\")",
        {"record": record, "value": text},
        {"resource": resource, "field": field_name, "formats": ["ISO 8601", *formats]},
    )


def unknown_status(resource: str, field_name: str, value: str, record: str, known: Iterable[str],
                   mapping_key: str) -> Misfit:
    """A status `value` of `resource` (field `field_name`) that the mapping (`mapping_key`) does not name."""
    codes = sorted(dict.fromkeys(known))
    return Misfit(
        "unknown_status", f"{resource}.{field_name}={value}",
        f"{resource} status {value!r} (field '{field_name}', e.g. {record}) is not in the mapping ({mapping_key}: "
        f"{', '.join(repr(c) for c in codes) or 'none'}): every {resource} with it is left out until the mapping "
        "names it",
        {"record": record, "value": value},
        {"resource": resource, "field": field_name, "value": value, "mapping_key": mapping_key, "known": codes},
    )


def merged_examples(held: Sequence[Any], new: Sequence[Any], limit: int = MAX_EXAMPLES) -> list[Any]:
    """The examples kept: those held, then new distinct ones, at most `limit` (the first seen stay: a stable row)."""
    out = list(held)[:limit]
    for example in new:
        if len(out) >= limit:
            break
        if example not in out:
            out.append(example)
    return out
