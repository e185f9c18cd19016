"""Pure logic: the consent-only change of an invalid customer record (issue 13, item 2).

A known customer whose record fails validation still has its consent change classified - only that - and the
entry stored for it keeps every other field "unseen", so the record's fix flows as usual later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from config.mapping import Consent, Mapping
from sync.changes import classify
from sync.customers.consent_changes import CONSENT_FIELDS, classify_consent, consent_values
from sync.customers.planner import plan_customer_changes
from sync.customers.records import parse_customer
from sync.fingerprints import StoredFingerprint, field_digests
from tests.integration.poller.test_changes import customer

MAPPING = Mapping(consent=Consent(email_list_id="LEMAIL", sms_list_id="LSMS"))
READ_AT = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
ON = customer(email_optin="Y", email_optin_date="2026-03-01 10:00:00")
# one edit: an email opt-out, a new first name, and an unknown status (the record is invalid)
BROKEN = dict(ON, email_optin="N", email_optin_date="2026-03-02 10:00:00", first_name="Hedwig", status="Z",
              last_mod="2026-03-02 10:00:00")


def stored(record: dict[str, Any], previous: StoredFingerprint | None = None) -> StoredFingerprint:
    event = classify(previous, record, "customer", MAPPING, READ_AT)
    assert event is not None
    decoded = StoredFingerprint.decode(event.state)
    assert decoded is not None
    return decoded


def decoded(state: str) -> StoredFingerprint:
    entry = StoredFingerprint.decode(state)
    assert entry is not None
    return entry


def test_a_known_invalid_record_yields_only_its_consent_change_on_the_fast_lane() -> None:
    assert parse_customer(BROKEN, MAPPING).customer is None  # the premise: the record is invalid
    previous = stored(ON)
    event = classify_consent(previous, BROKEN, MAPPING, READ_AT)
    assert event is not None
    assert event.kind == "fields_changed" and event.lane == "fast"
    assert event.changed_fields == ["email_optin", "email_optin_date"]  # not first_name, not status
    assert event.key == "7" and event.record == BROKEN and event.last_mod == "2026-03-02 10:00:00"
    assert event.version.endswith(f"#{previous.seq + 1:06d}")


def test_the_stored_entry_replaces_only_the_consent_digests() -> None:
    previous = stored(ON)
    event = classify_consent(previous, BROKEN, MAPPING, READ_AT)
    assert event is not None
    entry = decoded(event.state)
    consent = field_digests(consent_values(BROKEN, MAPPING))
    assert {k: v for k, v in entry.digests.items() if k in consent} == consent
    assert {k: v for k, v in entry.digests.items() if k not in consent} == {
        k: v for k, v in previous.digests.items() if k not in consent}
    assert entry.seq == previous.seq + 1 and entry.last_mod == BROKEN["last_mod"]
    assert entry.fingerprint not in (previous.fingerprint, stored(BROKEN).fingerprint)


def test_a_reread_of_the_still_invalid_record_is_no_change() -> None:
    event = classify_consent(stored(ON), BROKEN, MAPPING, READ_AT)
    assert event is not None
    assert classify_consent(decoded(event.state), dict(BROKEN, last_mod="2026-03-02 10:05:00"), MAPPING,
                            READ_AT) is None


def test_no_consent_change_or_an_unknown_customer_gives_nothing() -> None:
    broken_only = dict(ON, status="Z")  # invalid, consent as stored
    assert classify_consent(stored(ON), broken_only, MAPPING, READ_AT) is None
    # never known: it stays unseen entirely (fixed, it is "created" with its full profile)
    assert classify_consent(None, BROKEN, MAPPING, READ_AT) is None


def test_once_fixed_the_rest_of_the_record_shows_as_changed_and_consent_does_not_again() -> None:
    event = classify_consent(stored(ON), BROKEN, MAPPING, READ_AT)
    assert event is not None
    fixed = dict(BROKEN, status="A", last_mod="2026-03-02 11:00:00")
    later = classify(decoded(event.state), fixed, "customer", MAPPING, READ_AT)
    assert later is not None and later.kind == "fields_changed"
    assert later.changed_fields == ["first_name"]  # what changed while invalid; the consent went already
    assert later.version > event.version


def test_a_fix_that_restores_the_old_record_exactly_is_still_a_consent_change() -> None:
    """The partial entry matches no real record's fingerprint: going back to the first state (re-subscribed)
    is compared field by field and is not mistaken for "unchanged"."""
    event = classify_consent(stored(ON), BROKEN, MAPPING, READ_AT)
    assert event is not None
    back = classify(decoded(event.state), ON, "customer", MAPPING, READ_AT)
    assert back is not None and set(back.changed_fields) == {"email_optin", "email_optin_date"}


def test_the_planner_sends_the_opt_out_and_nothing_else_of_the_invalid_record() -> None:
    event = classify_consent(stored(ON), BROKEN, MAPPING, READ_AT)
    assert event is not None
    plan = plan_customer_changes([event], MAPPING)
    [unsubscribe] = plan.operations  # no profile upsert from the invalid record
    assert unsubscribe.kind == "unsubscribe" and unsubscribe.payload["channel"] == "email"
    assert unsubscribe.version == event.version
    assert plan.park == []  # and nothing parked for the daily batch
    # the record's problem, and the mapping's behind it (its status, once per value: sync/misfits.py)
    assert [p.type for p in plan.problems] == ["invalid_record", "unknown_status"]


def test_the_consent_fields_are_the_channels_flag_and_date() -> None:
    assert set(CONSENT_FIELDS) == {"email_optin", "email_optin_date", "sms_optin", "sms_optin_date"}
