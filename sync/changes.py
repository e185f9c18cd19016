"""Typed change events and their classification (pure: previous state in, event or None out).

`classify` compares a record's mapped values with the fingerprint stored when it was last handed on:
no entry -> created; same fingerprint -> None; otherwise which fields changed and whether the status moved.
The mapping's field policy decides the lane for customers; other resources have a fixed default lane that
their own handlers may refine.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from config.lanes import Lane
from config.mapping import Mapping
from sync.fingerprints import (
    StoredFingerprint,
    changed_fields,
    field_digests,
    fingerprint,
    mapped_values,
)
from sync.localtime import local_to_utc

ChangeKind = Literal["created", "fields_changed", "status_transition", "deleted"]

# Lanes of non-customer resources (their handlers decide finer urgency, e.g. stock transitions).
RESOURCE_LANES: dict[str, Lane] = {
    "order": "default",
    "pick": "default",
    "invoice": "default",
    "creditmemo": "default",
    "inventory": "fast",
    "style": "batch",
    "location": "batch",
}


class ChangeEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource: str
    key: str
    kind: ChangeKind
    changed_fields: list[str] = Field(default_factory=list)
    lane: Lane
    record: dict[str, Any]
    fingerprint: str
    last_mod: str
    version: str = Field(description="Orders changes of one record: '<last_mod UTC ISO>#<sequence>'")
    state: str = Field("", exclude=True, description="The fingerprint entry to store once handed on")

    @property
    def record_ref(self) -> str:
        return f"{self.resource}:{self.key}"


def immediate_fields(mapping: Mapping) -> set[str]:
    """Logical customer fields whose change goes on the fast lane (consent dates follow their flag)."""
    policy = set(mapping.field_policy.immediate)
    names = set(type(mapping.fields.customer).model_fields)
    extra = {n for n in names for flag in policy if flag.endswith("_optin") and n.startswith(f"{flag}_")}
    if {"first_name", "last_name"} & policy:
        extra.add("name")  # tenants with one name field: first/last are derived from it
    return policy | extra


def is_deleted(resource: str, record: dict[str, Any], mapping: Mapping) -> bool:
    if resource != "customer":
        return False
    fields = mapping.fields.customer
    return str(record.get(fields.delete_flag, "")).strip() in fields.yes_values


def lane_for(resource: str, kind: ChangeKind, changed: list[str], mapping: Mapping) -> Lane:
    if resource != "customer":
        return RESOURCE_LANES.get(resource, "default")
    if kind in ("created", "deleted"):
        return "fast"
    return "fast" if set(changed) & immediate_fields(mapping) else "batch"


def classify(
    previous: StoredFingerprint | None, record: dict[str, Any], resource: str, mapping: Mapping
) -> ChangeEvent | None:
    """The change this read of `record` represents against `previous`, or None when nothing mapped changed."""
    res = getattr(mapping.resources, resource)
    values = mapped_values(resource, record, mapping)
    fp = fingerprint(values)
    if previous is not None and previous.fingerprint == fp:
        return None
    last_mod = str(record.get(res.last_mod, ""))
    kind: ChangeKind
    if is_deleted(resource, record, mapping):
        kind, changed = "deleted", []
    elif previous is None:
        kind, changed = "created", sorted(values)
    else:
        changed = changed_fields(previous.digests, values)
        kind = "status_transition" if "status" in changed else "fields_changed"
    seq = (previous.seq if previous else 0) + 1
    try:
        stamp = local_to_utc(last_mod, ZoneInfo(mapping.tenant.timezone)).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        stamp = "0000-00-00T00:00:00Z"
    state = StoredFingerprint(fp, last_mod, seq, field_digests(values)).encode()
    return ChangeEvent(
        resource=resource,
        key=str(record.get(res.key, "")),
        kind=kind,
        changed_fields=changed,
        lane=lane_for(resource, kind, changed, mapping),
        record=record,
        fingerprint=fp,
        last_mod=last_mod,
        version=f"{stamp}#{seq:06d}",
        state=state,
    )
