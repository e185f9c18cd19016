"""The consent change of an invalid customer record (pure): a bad unrelated field never blocks an opt-out.

A customer record that fails validation (unknown status, broken address text, ...) is not classified as a
whole: its data cannot go to Klaviyo. Its consent fields still can (`ParsedCustomer.consent`), so for a
customer the fleet already knows, `classify_consent` compares only the consent fields with the stored
fingerprint and returns a change restricted to them. The entry to store is the previous one with only the
consent digests replaced: every other field stays "unseen", so when the record is fixed its other changes
show as changed and flow as usual. A never-known invalid record gets no event (stays unseen entirely; once
fixed it is "created" with its full profile). See docs/poller.md, "Consent".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from config.mapping import Mapping
from sync.changes import ChangeEvent, change_version, erp_sequence
from sync.customers.consent import CHANNEL_FIELDS
from sync.fingerprints import StoredFingerprint, changed_fields, field_digests, fingerprint, mapped_values

CONSENT_FIELDS: tuple[str, ...] = tuple(name for fields in CHANNEL_FIELDS.values() for name in fields)


def consent_values(record: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """The record's mapped consent fields (flag and date per channel), by logical name."""
    values = mapped_values("customer", record, mapping)
    return {name: values.get(name) for name in CONSENT_FIELDS}


def partial_fingerprint(digests: dict[bytes, bytes]) -> str:
    """The fingerprint of an entry that mixes two reads: no real record's fingerprint can equal it (its
    input is not a record's mapped values), so the next read of the record is always compared per field."""
    return fingerprint({"partial_entry": sorted(name.hex() + value.hex() for name, value in digests.items())})


def classify_consent(
    previous: StoredFingerprint | None, record: dict[str, Any], mapping: Mapping, read_at: datetime | None = None
) -> ChangeEvent | None:
    """The consent-only change of an invalid customer `record` against `previous`, or None: the customer is
    not known yet (no entry), or none of its consent fields changed. Always on the fast lane (compliance)."""
    if previous is None:
        return None
    consent = consent_values(record, mapping)
    changed = changed_fields(previous.digests, consent)
    if not changed:
        return None
    res = mapping.resources.customer
    digests = {**previous.digests, **field_digests(consent)}
    fp = partial_fingerprint(digests)
    last_mod = str(record.get(res.last_mod, ""))
    seq = previous.seq + 1
    version = change_version(last_mod, seq, mapping, read_at or datetime.now(UTC), erp_sequence(record, res),
                             "customer")
    return ChangeEvent(
        resource="customer",
        key=str(record.get(res.key, "")),
        kind="fields_changed",
        changed_fields=changed,
        lane="fast",
        record=record,
        fingerprint=fp,
        last_mod=last_mod,
        version=version,
        state=StoredFingerprint(fp, last_mod, seq, digests).encode(),
    )
