"""The difference types reconciliation reports, and one difference.

Each type is an exception type of `config.exception_types` (owner, meaning, action); `FLEET_REPAIRS` are the
types the fleet repairs by re-delivering (with `--repair`), every other type is reported only: a person
decides (a Klaviyo-side unsubscribe the ERP does not know, a hand-merged profile, money)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from sync.operations import Operation

Area = Literal["customers", "consent", "orders", "stock", "catalog"]
AREAS: tuple[Area, ...] = ("customers", "consent", "orders", "stock", "catalog")

PROFILE_MISSING = "recon_profile_missing"
PROFILE_EXTRA = "recon_profile_extra"
PROFILE_SPLIT = "recon_profile_split"
PROFILE_MERGED = "recon_profile_merged"
PROFILE_FIELD = "recon_profile_field"
CONSENT_MISMATCH = "recon_consent_mismatch"  # the ERP is newer: the fleet re-sends the ERP's consent
CONSENT_KLAVIYO_SIDE = "recon_consent_klaviyo_side"  # Klaviyo is newer (two-way consent): ecommerce decides
EVENT_MISSING = "recon_event_missing"
EVENT_EXTRA = "recon_event_extra"
EVENT_VALUE = "recon_event_value"
REVENUE_MISMATCH = "revenue_mismatch"
AGGREGATE_MISMATCH = "recon_aggregate_mismatch"
STOCK_MISMATCH = "recon_stock_mismatch"
CATALOG_MISSING = "recon_catalog_missing"

# every type, recorded in the exception register by `flows.reconcile` (config/exception_types.py explains each)
DifferenceType = Literal[
    "recon_profile_missing", "recon_profile_extra", "recon_profile_split", "recon_profile_merged",
    "recon_profile_field", "recon_consent_mismatch", "recon_consent_klaviyo_side", "recon_event_missing",
    "recon_event_extra", "recon_event_value", "revenue_mismatch", "recon_aggregate_mismatch",
    "recon_stock_mismatch", "recon_catalog_missing",
]
TYPES: tuple[str, ...] = get_args(DifferenceType)
# what re-delivery fixes; the rest is a person's decision or cannot be changed by sending (Klaviyo events
# are immutable: a wrong value or an extra event is reported, never "fixed" by a second event)
FLEET_REPAIRS: frozenset[str] = frozenset({
    PROFILE_MISSING, PROFILE_FIELD, CONSENT_MISMATCH, EVENT_MISSING, AGGREGATE_MISMATCH, STOCK_MISMATCH,
    CATALOG_MISSING,
})
AREA_OF: dict[str, Area] = {
    PROFILE_MISSING: "customers", PROFILE_EXTRA: "customers", PROFILE_SPLIT: "customers",
    PROFILE_MERGED: "customers", PROFILE_FIELD: "customers", CONSENT_MISMATCH: "consent",
    CONSENT_KLAVIYO_SIDE: "consent", EVENT_MISSING: "orders", EVENT_EXTRA: "orders", EVENT_VALUE: "orders",
    REVENUE_MISMATCH: "orders", AGGREGATE_MISMATCH: "orders", STOCK_MISMATCH: "stock",
    CATALOG_MISSING: "catalog",
}


@dataclass(frozen=True)
class Difference:
    type: str
    record_key: str  # `customer:C1`, `event:Placed Order:SO1`, `order:SO1`, `variant:SKU1`, `consent:email:C1`
    reason: str  # one line for people: what differs
    desired: Any  # what Klaviyo must hold (the ERP's, through the fleet's rules)
    actual: Any  # what Klaviyo holds (None: nothing)
    customer: str | None = None  # the customer code, for the owner team (two-way consent: to update the ERP)
    repair: tuple[Operation, ...] = field(default=())  # the re-delivery that fixes it (fleet-owned types)

    @property
    def area(self) -> Area:
        return AREA_OF[self.type]

    @property
    def fleet_owned(self) -> bool:
        return self.type in FLEET_REPAIRS and bool(self.repair)

    def details(self) -> dict[str, Any]:
        """What the exception register keeps: both values, the customer, whether the fleet repairs it."""
        return {"desired": self.desired, "actual": self.actual, "customer": self.customer,
                "area": self.area, "fleet_repairs": self.fleet_owned}
