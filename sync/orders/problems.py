"""What goes wrong with an ERP record, said precisely enough for an operator to fix it in the ERP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sync.misfits import Misfit

# Matches the exception types of `config.mapping.ExceptionOwners`, so the register can pick an owner.
ProblemType = Literal["invalid_record", "unknown_status", "customer_mismatch", "storefront_ref_missing"]


@dataclass(frozen=True)
class RecordProblem:
    """One problem with one field of one record, e.g. ('order:SO1', 'ord_status', "unknown code 'Z'").

    `field` is the ERP field name as the tenant mapping names it (or '' when the whole record is at
    fault), so the message points at what to fix in Blue Cherry. `misfit`: the mapping problem behind it, when
    the mapping cannot read the value (a status it does not name, a date no format reads): recorded once per
    value or field besides the record's own exception (`sync.misfits`).
    """

    record_key: str
    field: str
    reason: str
    type: ProblemType = "invalid_record"
    misfit: Misfit | None = None

    def __str__(self) -> str:
        where = f"{self.record_key}.{self.field}" if self.field else self.record_key
        return f"{where}: {self.reason}"


class InvalidRecord(ValueError):
    """Raised by the parsers: every problem found in one record, not just the first."""

    def __init__(self, problems: list[RecordProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in problems))
