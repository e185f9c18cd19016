"""Pure logic: fingerprints, classification, lanes, DST-safe filter bounds."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.mapping import FieldPolicy, Mapping
from sync.changes import classify
from sync.fingerprints import StoredFingerprint, fingerprint, mapped_values
from sync.localtime import LocalTimeError, filter_start, local_to_utc

MAPPING = Mapping()
NY = ZoneInfo("America/New_York")


def customer(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "pkey": 7, "customer": "C1", "name": "Ann Lee", "first_name": "Ann", "last_name": "Lee",
        "email": "ann@example.com", "phone": "2125550100", "division": "APP", "cust_group": "DTC",
        "cust_type": "RETAIL", "created": "2026-01-02 10:00:00", "status": "A", "delete_flag": "N",
        "email_optin": "N", "email_optin_date": "", "sms_optin": "N", "sms_optin_date": "",
        "last_mod": "2026-03-02 10:00:00",
        "custaddress": {"rows": [
            {"addr_type": "BT", "addr1": "1 Main St", "city": "New York", "state": "NY", "zipcode": "10001"},
            {"addr_type": "ST", "addr1": "2 Side St", "city": "New York", "state": "NY", "zipcode": "10002"},
        ]},
    }
    record.update(overrides)
    return record


def stored(record: dict[str, Any]) -> StoredFingerprint:
    event = classify(None, record, "customer", MAPPING)
    assert event is not None
    decoded = StoredFingerprint.decode(event.state)
    assert decoded is not None
    return decoded


def test_new_record_is_created_on_the_fast_lane() -> None:
    event = classify(None, customer(), "customer", MAPPING)
    assert event is not None and event.kind == "created" and event.lane == "fast"
    assert event.version.endswith("#000001")


def test_same_values_are_unchanged_even_when_only_last_mod_or_child_order_moved() -> None:
    before = customer()
    after = customer(last_mod="2026-03-02 11:00:00")
    after["custaddress"]["rows"].reverse()
    assert classify(stored(before), after, "customer", MAPPING) is None


def test_fingerprint_is_key_order_independent() -> None:
    a = mapped_values("customer", customer(), MAPPING)
    b = dict(reversed(list(a.items())))
    assert fingerprint(a) == fingerprint(b)


def test_immediate_field_change_is_fast_and_names_the_field() -> None:
    event = classify(stored(customer()), customer(first_name="Anne"), "customer", MAPPING)
    assert event is not None and event.kind == "fields_changed"
    assert event.changed_fields == ["first_name"] and event.lane == "fast"
    assert event.version.endswith("#000002")


def test_batch_field_change_goes_to_the_batch_lane() -> None:
    after = copy.deepcopy(customer())
    after["custaddress"]["rows"][0]["city"] = "Boston"
    event = classify(stored(customer()), after, "customer", MAPPING)
    assert event is not None and event.changed_fields == ["addresses"] and event.lane == "batch"


def test_consent_date_follows_its_flag_and_status_is_a_transition() -> None:
    event = classify(stored(customer()), customer(email_optin="Y", email_optin_date="2026-03-02 10:05:00"),
                     "customer", MAPPING)
    assert event is not None and set(event.changed_fields) == {"email_optin", "email_optin_date"}
    assert event.lane == "fast"
    moved = classify(stored(customer()), customer(status="I"), "customer", MAPPING)
    assert moved is not None and moved.kind == "status_transition" and moved.lane == "batch"


def test_delete_flag_is_deleted() -> None:
    event = classify(stored(customer()), customer(delete_flag="Y"), "customer", MAPPING)
    assert event is not None and event.kind == "deleted" and event.lane == "fast"


def test_field_policy_is_configurable() -> None:
    mapping = Mapping(field_policy=FieldPolicy(immediate=("division",)))
    event = classify(stored(customer()), customer(first_name="Anne"), "customer", mapping)
    assert event is not None and event.lane == "batch"
    event = classify(stored(customer()), customer(division="KIDS"), "customer", mapping)
    assert event is not None and event.lane == "fast"


def test_stored_entry_round_trips_and_is_compact() -> None:
    entry = stored(customer())
    assert StoredFingerprint.decode(entry.encode()) == entry
    assert len(entry.encode()) < 300
    assert StoredFingerprint.decode("garbage") is None


def test_other_resources_get_their_default_lane() -> None:
    order = {"pkey": 1, "ord_num": "SO1", "ord_status": "E", "last_mod": "2026-03-02 10:00:00",
             "orderdetail": {"rows": [{"line_seq": 1, "ord_qty": 2}]}}
    event = classify(None, order, "order", MAPPING)
    assert event is not None and event.lane == "default"
    changed = dict(order, orderdetail={"rows": [{"line_seq": 1, "ord_qty": 3}]})
    event = classify(StoredFingerprint.decode(event.state), changed, "order", MAPPING)
    assert event is not None and event.changed_fields == ["lines"]


def test_filter_start_subtracts_the_overlap() -> None:
    wm = local_to_utc("2026-03-02 10:00:00", NY)
    assert filter_start(wm, 120, NY) == "2026-03-02 09:58:00"


def test_filter_start_widens_before_a_fall_back() -> None:
    # 2026-11-01 01:59:59 EDT, then the wall clock shows 01:00:00 EST again.
    wm = datetime(2026, 11, 1, 5, 59, 0, tzinfo=UTC)  # 01:59:00 EDT
    assert filter_start(wm, 120, NY) == "2026-11-01 00:57:00"  # an hour earlier: the repeat is covered
    after = datetime(2026, 11, 1, 8, 0, 0, tzinfo=UTC)  # 03:00 EST, well past the change
    assert filter_start(after, 120, NY) == "2026-11-01 02:58:00"


def test_ambiguous_local_time_maps_to_the_earlier_instant() -> None:
    assert local_to_utc("2026-11-01 01:30:00", NY) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_a_stamp_with_its_own_offset_is_taken_at_that_offset() -> None:
    assert local_to_utc("2026-03-01T10:00:00+00:00", NY) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert local_to_utc("2026-03-01T10:00:00-08:00", NY) == datetime(2026, 3, 1, 18, tzinfo=UTC)
    assert local_to_utc("2026-03-01T10:00:00Z", NY) == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_naive_stamps_are_read_in_the_tenant_zone_as_before() -> None:
    assert local_to_utc("2026-03-01 10:00:00", NY) == datetime(2026, 3, 1, 15, tzinfo=UTC)  # EST
    assert local_to_utc("2026-03-01T10:00:00", NY) == datetime(2026, 3, 1, 15, tzinfo=UTC)
    assert local_to_utc(" 2026-07-15 10:00:00 ", NY) == datetime(2026, 7, 15, 14, tzinfo=UTC)  # EDT
    assert local_to_utc("2026-07-15", NY) == datetime(2026, 7, 15, 4, tzinfo=UTC)
    # the repeated fall-back hour: the earlier instant (01:30 EDT), not the later one (01:30 EST = 06:30 UTC)
    assert local_to_utc("2026-11-01 01:30:00", NY) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert local_to_utc("2026-11-01 00:59:59", NY) == datetime(2026, 11, 1, 4, 59, 59, tzinfo=UTC)
    assert local_to_utc("2026-11-01 02:00:00", NY) == datetime(2026, 11, 1, 7, tzinfo=UTC)


def test_a_stamp_that_is_no_time_is_refused_with_a_value_error() -> None:
    for bad in ("", "yesterday", "2026-02-30 10:00:00", "2026-01-01 25:00:00"):
        with pytest.raises(LocalTimeError) as caught:
            local_to_utc(bad, NY)
        assert isinstance(caught.value, ValueError)  # what the poller, changes and backfills catch
