"""The ERP version of a stock figure, comparable across the REST and CSV paths.

A figure's version is the pair (newest `last_mod` among the inventory rows it was computed from,
the moment those rows were observed). `last_mod` orders figures by ERP change; it has one-second
resolution, so two changes in the same second tie on it, and the observation time breaks the tie: rows
read later reflect an ERP state at least as new (the poller reads in time order; a CSV drop's observation
time is the report's as-of time). Encoded as a fixed-width string, so lexicographic order is version order:

    2026-11-20T13:05:00~2026-11-20T18:05:03.120000Z
    (tenant-local last_mod, no zone) ~ (observed at, UTC, microseconds)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

NEVER = datetime(1, 1, 1)  # last_mod of a figure computed from no rows (a SKU with no stock anywhere)


@dataclass(frozen=True, order=True, slots=True)
class StockVersion:
    last_mod: datetime  # naive, tenant-local, whole seconds
    observed_at: datetime  # aware, UTC

    @classmethod
    def of(cls, last_mod: datetime | None, observed_at: datetime) -> StockVersion:
        if observed_at.tzinfo is None:
            raise ValueError("observed_at must be timezone-aware (it is compared across hosts)")
        return cls(
            last_mod=(last_mod or NEVER).replace(tzinfo=None, microsecond=0),
            observed_at=observed_at.astimezone(UTC),
        )

    def encode(self) -> str:
        observed = self.observed_at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
        return f"{self.last_mod.isoformat(timespec='seconds')}~{observed}Z"

    @classmethod
    def parse(cls, text: str) -> StockVersion:
        try:
            last_mod, observed = text.split("~")
            if not observed.endswith("Z"):
                raise ValueError("observation time must end in Z")
            return cls(
                last_mod=datetime.fromisoformat(last_mod),
                observed_at=datetime.fromisoformat(observed[:-1]).replace(tzinfo=UTC),
            )
        except ValueError as exc:
            raise ValueError(f"not a stock version: {text!r} ({exc})") from None
