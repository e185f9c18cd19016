"""Typed change events and their classification (pure: previous state in, event or None out).

`classify` compares a record's mapped values with the fingerprint stored when it was last handed on:
no entry -> created; same fingerprint -> None; otherwise which fields changed and whether the status moved.
The mapping's field policy decides the lane for customers; other resources have a fixed default lane that
their own handlers may refine.

Every event carries a `version` that orders the changes of one record as plain strings (the ledger's newest
wins, tombstones, per-attribute versions all compare them so): ``<last_mod UTC>#<fleet sequence>``, or, for
a resource whose mapping names an ERP change counter (`sequence_field`),
``s<counter, 20 digits>#<last_mod UTC>#<fleet sequence>`` (the ``s`` sorts after every digit, so such a
version is newer than any stamp version of before the option was set). See docs/poller.md, "Versions".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from config.lanes import Lane
from config.mapping import Mapping, ResourceMapping
from sync.fields import read_text
from sync.fingerprints import (
    StoredFingerprint,
    changed_fields,
    field_digests,
    fingerprint,
    mapped_values,
)
from sync.localtime import parse_erp_instant, tenant_zone

ChangeKind = Literal["created", "resynced", "fields_changed", "status_transition", "deleted"]

STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
STAMP_LENGTH = len("2026-01-01T00:00:00Z")
NO_STAMP = "0000-00-00T00:00:00Z"  # an unreadable last_mod: older than any real one
SEQUENCE_MARK = "s"
SEQUENCE_DIGITS = 20  # an unsigned 64-bit counter (rowversion) has at most 20 digits

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
    version: str = Field(description="Orders changes of one record: '<last_mod UTC ISO>#<sequence>', or "
                         "'s<ERP counter>#<last_mod UTC ISO>#<sequence>' (see `change_version`)")
    state: str = Field("", exclude=True, description="The fingerprint entry to store once handed on")
    # the stock scan (state/stock_scans.py) that delivers this inventory row; empty: none (messages written
    # before scans existed parse as before and count as complete)
    scan: str = ""

    @model_serializer(mode="wrap")
    def _without_empty_scan(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # no scan, no field: every message but a scanned inventory row keeps the shape workers of before accept
        # (extra="forbid" there)
        data: dict[str, Any] = handler(self)
        if not self.scan:
            data.pop("scan", None)
        return data

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
    return read_text(record, fields, "delete_flag") in fields.yes_values


CHANGE_VERSION = re.compile(
    rf"^({SEQUENCE_MARK}\d{{{SEQUENCE_DIGITS}}}#)?\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}Z#\d+")


def is_change_version(version: str) -> bool:
    """A version `change_version` built (either format), as opposed to a tag like "backfill"."""
    return bool(CHANGE_VERSION.match(version))


def version_stamp(version: str) -> str:
    """The last_mod UTC stamp a version carries, in either format."""
    if version.startswith(SEQUENCE_MARK):
        return version[len(SEQUENCE_MARK) + SEQUENCE_DIGITS + 1 :][:STAMP_LENGTH]
    return version[:STAMP_LENGTH]


def erp_sequence(record: dict[str, Any], resource: ResourceMapping) -> int | None:
    """The record's ERP change counter (decimal, or hex as '0x...'), or None: no `sequence_field` in the
    mapping, the record lacks it, or it is not a non-negative integer of at most 20 digits."""
    if not resource.sequence_field:
        return None
    value = record.get(resource.sequence_field)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            return None
    else:
        return None
    return number if 0 <= number < 10**SEQUENCE_DIGITS else None


def change_version(last_mod: str, fleet_seq: int, mapping: Mapping, read_at: datetime,
                   erp_seq: int | None = None, resource: str = "") -> str:
    """The version of a change read at `read_at`: last_mod resolved by `erp_instant` (a repeated hour's
    wall time -> the latest instant not after the read), led by the ERP counter when there is one. `resource`:
    whose date formats read last_mod (ISO only without it)."""
    formats = mapping.date_formats(resource) if resource else ()
    try:
        stamp = parse_erp_instant(last_mod, tenant_zone(mapping.tenant.timezone), read_at, formats).strftime(
            STAMP_FORMAT)
    except ValueError:
        stamp = NO_STAMP
    if erp_seq is None:
        return f"{stamp}#{fleet_seq:06d}"
    return f"{SEQUENCE_MARK}{erp_seq:0{SEQUENCE_DIGITS}d}#{stamp}#{fleet_seq:06d}"


def _older_than(last_mod: str, mapping: Mapping, read_at: datetime, seconds: float, resource: str) -> bool:
    try:
        changed_at = parse_erp_instant(last_mod, tenant_zone(mapping.tenant.timezone), read_at,
                                       mapping.date_formats(resource))
    except ValueError:
        return False
    return (read_at - changed_at).total_seconds() > seconds


def lane_for(resource: str, kind: ChangeKind, changed: list[str], mapping: Mapping) -> Lane:
    if resource != "customer":
        return RESOURCE_LANES.get(resource, "default")
    if kind == "resynced":
        return "batch"
    if kind in ("created", "deleted"):
        return "fast"
    return "fast" if set(changed) & immediate_fields(mapping) else "batch"


def classify(
    previous: StoredFingerprint | None, record: dict[str, Any], resource: str, mapping: Mapping,
    read_at: datetime | None = None, recent_seconds: float | None = None,
) -> ChangeEvent | None:
    """The change this read of `record` represents against `previous`, or None when nothing mapped changed.
    `read_at`: when the fleet read the record (aware; default now), which places a last_mod of a repeated
    hour (see `change_version`). `recent_seconds`: a customer the fleet holds nothing of whose last change is
    older than this before `read_at` is "resynced" (a re-scan after state loss, go-live's first scan: the
    batch lane), not "created" (a new customer: the fast lane)."""
    res = getattr(mapping.resources, resource)
    values = mapped_values(resource, record, mapping)
    fp = fingerprint(values)
    if previous is not None and previous.fingerprint == fp:
        return None
    last_mod = str(record.get(res.last_mod, ""))
    read_at = read_at or datetime.now(UTC)
    kind: ChangeKind
    if is_deleted(resource, record, mapping):
        kind, changed = "deleted", []
    elif previous is None:
        old = resource == "customer" and recent_seconds is not None and _older_than(
            last_mod, mapping, read_at, recent_seconds, resource)
        kind, changed = "resynced" if old else "created", sorted(values)
    else:
        changed = changed_fields(previous.digests, values)
        kind = "status_transition" if "status" in changed else "fields_changed"
    seq = (previous.seq if previous else 0) + 1
    version = change_version(last_mod, seq, mapping, read_at, erp_sequence(record, res), resource)
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
        version=version,
        state=state,
    )
