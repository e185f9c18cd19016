"""Pure logic: the unambiguous order of change versions (issue 13, item 4).

`erp_instant` places a tenant-local wall time of a repeated (fall-back) hour by when the fleet read it;
`classify` builds versions from it, or from the ERP's own change counter when the mapping names one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.mapping import Mapping, load_mapping
from sync.changes import ChangeEvent, classify, is_change_version, version_stamp
from sync.customers.erasure import version_stamp as erasure_version_stamp
from sync.fingerprints import StoredFingerprint
from sync.localtime import LocalTimeError, erp_instant, local_to_utc, parse_erp_instant

NY = ZoneInfo("America/New_York")
MAPPING = Mapping()  # tenant zone America/New_York, no sequence field


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def wall(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- erp_instant -----------------------------------------------------------------------------------
def test_fall_back_read_after_both_candidates_takes_the_later_one() -> None:
    # 2026-11-01 01:10 happens at 05:10Z (EDT) and 06:10Z (EST); read at 01:20 EST = 06:20Z
    assert erp_instant(wall("2026-11-01 01:10:00"), NY, utc("2026-11-01 06:20:00")) == utc("2026-11-01 06:10:00")


def test_fall_back_candidate_after_the_read_is_not_taken() -> None:
    # 01:50 is 05:50Z (EDT) or 06:50Z (EST); 06:50Z had not happened yet at the read
    assert erp_instant(wall("2026-11-01 01:50:00"), NY, utc("2026-11-01 06:20:00")) == utc("2026-11-01 05:50:00")


def test_fall_back_read_in_the_first_pass_of_the_hour_takes_daylight_time() -> None:
    # read at 01:55 EDT (05:55Z): the 01:10 written must be 01:10 EDT, 06:10Z is still an hour away
    assert erp_instant(wall("2026-11-01 01:10:00"), NY, utc("2026-11-01 05:55:00")) == utc("2026-11-01 05:10:00")


def test_fall_back_read_after_the_repeated_hour_takes_standard_time() -> None:
    read = utc("2026-11-01 07:30:00")  # 02:30 EST
    assert erp_instant(wall("2026-11-01 01:50:00"), NY, read) == utc("2026-11-01 06:50:00")
    assert erp_instant(wall("2026-11-01 01:10:00"), NY, read) == utc("2026-11-01 06:10:00")


def test_a_candidate_exactly_at_the_read_counts_as_not_after_it() -> None:
    assert erp_instant(wall("2026-11-01 01:10:00"), NY, utc("2026-11-01 06:10:00")) == utc("2026-11-01 06:10:00")
    assert erp_instant(wall("2026-11-01 01:10:00"), NY, utc("2026-11-01 06:09:59")) == utc("2026-11-01 05:10:00")


def test_no_candidate_before_the_read_takes_the_earliest() -> None:
    # the ERP's clock ahead of ours: nothing is "not after" the read, the earlier instant is the safer guess
    assert erp_instant(wall("2026-11-01 01:10:00"), NY, utc("2026-11-01 05:00:00")) == utc("2026-11-01 05:10:00")


def test_spring_forward_gap_uses_the_offset_before_the_gap_whatever_the_read() -> None:
    # 2026-03-08 02:30 never happens in New York; read as EST: 07:30Z (= 03:30 EDT), as parse_local does
    for read in (utc("2026-03-08 07:05:00"), utc("2026-03-08 12:00:00"), utc("2026-03-09 00:00:00")):
        assert erp_instant(wall("2026-03-08 02:30:00"), NY, read) == utc("2026-03-08 07:30:00")
    assert local_to_utc("2026-03-08 02:30:00", NY) == utc("2026-03-08 07:30:00")


def test_unambiguous_times_and_a_utc_tenant_ignore_the_read_time() -> None:
    for read in (utc("2026-11-01 06:20:00"), utc("2027-01-01 00:00:00")):
        assert erp_instant(wall("2026-11-01 00:59:59"), NY, read) == utc("2026-11-01 04:59:59")  # EDT
        assert erp_instant(wall("2026-11-01 02:00:00"), NY, read) == utc("2026-11-01 07:00:00")  # EST
        assert erp_instant(wall("2026-11-01 01:10:00"), ZoneInfo("UTC"), read) == utc("2026-11-01 01:10:00")


def test_a_time_with_its_own_offset_is_taken_at_that_offset() -> None:
    read = utc("2026-11-01 07:30:00")
    assert parse_erp_instant("2026-11-01T01:50:00-04:00", NY, read) == utc("2026-11-01 05:50:00")
    assert erp_instant(datetime(2026, 11, 1, 1, 10, tzinfo=UTC), NY, read) == utc("2026-11-01 01:10:00")


def test_bad_input_is_refused() -> None:
    with pytest.raises(LocalTimeError):
        parse_erp_instant("2026-02-30 10:00:00", NY, utc("2026-03-01 00:00:00"))
    with pytest.raises(TypeError):
        erp_instant(wall("2026-11-01 01:10:00"), NY, wall("2026-11-01 06:20:00"))


def test_successive_writes_of_one_record_always_resolve_in_order_across_the_fall_back_night() -> None:
    """Exhaustive over the night's minutes: write at t1, read at r1 (t1 <= r1 < t2: the second write comes
    after the first read, else the poller would never have seen the first), write at t2, read at r2 >= t2.
    The ERP keeps only the wall time; the resolved instants must keep t1 < t2 (the old fold=0 did not)."""
    start = utc("2026-11-01 04:00:00")  # 00:00 EDT
    instants = [start + timedelta(minutes=m) for m in range(0, 4 * 60, 5)]
    old_rule_wrong = 0
    for i, t1 in enumerate(instants):
        stamp1 = t1.astimezone(NY).replace(tzinfo=None)
        for t2 in instants[i + 1:]:
            stamp2 = t2.astimezone(NY).replace(tzinfo=None)
            for r1 in (t1, t2 - timedelta(seconds=1)):
                first = erp_instant(stamp1, NY, r1)
                for r2 in (t2, t2 + timedelta(hours=3)):
                    assert first < erp_instant(stamp2, NY, r2), (t1, r1, t2, r2)
            old_rule_wrong += local_to_utc(str(stamp1), NY) >= local_to_utc(str(stamp2), NY)
    assert old_rule_wrong > 0  # the night has pairs fold=0 orders the wrong way round


# --- versions of change events ---------------------------------------------------------------------
def customer(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "pkey": 7, "customer": "C1", "name": "Ann Lee", "first_name": "Ann", "last_name": "Lee",
        "email": "ann@example.com", "phone": "2125550100", "division": "APP", "cust_group": "DTC",
        "cust_type": "RETAIL", "created": "2026-01-02 10:00:00", "status": "A", "delete_flag": "N",
        "email_optin": "N", "email_optin_date": "", "sms_optin": "N", "sms_optin_date": "",
        "last_mod": "2026-03-02 10:00:00", "custaddress": {"rows": []},
    }
    record.update(overrides)
    return record


def then(first: ChangeEvent, record: dict[str, Any], mapping: Mapping, read_at: datetime) -> ChangeEvent:
    event = classify(StoredFingerprint.decode(first.state), record, "customer", mapping, read_at)
    assert event is not None
    return event


def test_subscribe_at_0150_edt_then_unsubscribe_at_0110_est_are_versioned_in_that_order() -> None:
    subscribe = customer(email_optin="Y", email_optin_date="2026-11-01 01:50:00", last_mod="2026-11-01 01:50:00")
    unsubscribe = customer(email_optin="N", email_optin_date="2026-11-01 01:10:00", last_mod="2026-11-01 01:10:00")
    first = classify(None, subscribe, "customer", MAPPING, utc("2026-11-01 05:52:00"))  # read at 01:52 EDT
    assert first is not None
    second = then(first, unsubscribe, MAPPING, utc("2026-11-01 06:20:00"))  # read at 01:20 EST
    assert first.version == "2026-11-01T05:50:00Z#000001"
    assert second.version == "2026-11-01T06:10:00Z#000002"
    assert second.version > first.version  # the ledger's newest wins keeps the unsubscribe
    # what fold=0 made of them: the unsubscribe at 05:10Z, older than the subscribe, skipped
    assert local_to_utc("2026-11-01 01:10:00", NY) < local_to_utc("2026-11-01 01:50:00", NY)


def test_tenants_without_a_sequence_field_keep_the_version_format() -> None:
    event = classify(None, customer(), "customer", MAPPING, utc("2026-03-02 15:00:05"))
    assert event is not None and event.version == "2026-03-02T15:00:00Z#000001"
    assert version_stamp(event.version) == erasure_version_stamp(event.version) == "2026-03-02T15:00:00Z"
    bad = classify(None, customer(last_mod="never"), "customer", MAPPING, utc("2026-03-02 15:00:05"))
    assert bad is not None and bad.version == "0000-00-00T00:00:00Z#000001"


@pytest.fixture
def counted(tmp_path: Path) -> Mapping:
    """A tenant whose customers carry the ERP's change counter, loaded like a real mapping file."""
    path = tmp_path / "mapping.toml"
    path.write_text('[resources.customer]\nsequence_field = "rowversion"\n', encoding="utf-8")
    mapping = load_mapping(path)
    assert mapping.resources.customer.path == "customer"  # the other defaults of the table stay
    return mapping


def test_an_erp_counter_orders_versions_before_last_mod(counted: Mapping) -> None:
    first = classify(None, customer(rowversion=1001, last_mod="2026-11-01 01:50:00"), "customer", counted,
                     utc("2026-11-01 07:30:00"))  # read late: 01:50 resolves to 06:50Z
    assert first is not None
    assert first.version == "s00000000000000001001#2026-11-01T06:50:00Z#000001"
    # a later write with an EARLIER resolved last_mod: the counter decides
    second = then(first, customer(rowversion="0x3ED", first_name="Anne", last_mod="2026-11-01 01:10:00"),
                  counted, utc("2026-11-01 07:31:00"))
    assert second.version == "s00000000000000001005#2026-11-01T06:10:00Z#000002"
    assert second.version > first.version
    assert second.last_mod == "2026-11-01 01:10:00"  # still carried for display
    assert version_stamp(second.version) == erasure_version_stamp(second.version) == "2026-11-01T06:10:00Z"


def test_counter_versions_sort_after_every_stamp_version_and_by_number(counted: Mapping) -> None:
    read = utc("2026-03-02 15:00:05")
    small = classify(None, customer(rowversion=9), "customer", counted, read)
    large = classify(None, customer(rowversion=10), "customer", counted, read)
    stamped = classify(None, customer(last_mod="2099-12-31 23:59:59"), "customer", MAPPING, read)
    assert small is not None and large is not None and stamped is not None
    assert stamped.version < small.version < large.version  # 9 < 10 as numbers, not as text


@pytest.mark.parametrize("value", [None, "", "n/a", -1, True, 10**20, 1.5])
def test_a_missing_or_unusable_counter_falls_back_to_the_stamp_version(counted: Mapping, value: Any) -> None:
    record = customer() if value is None else customer(rowversion=value)
    event = classify(None, record, "customer", counted, utc("2026-03-02 15:00:05"))
    assert event is not None and event.version == "2026-03-02T15:00:00Z#000001"


def test_the_counter_does_not_make_a_change_by_itself(counted: Mapping) -> None:
    first = classify(None, customer(rowversion=1), "customer", counted, utc("2026-03-02 15:00:05"))
    assert first is not None
    assert classify(StoredFingerprint.decode(first.state), customer(rowversion=2), "customer", counted,
                    utc("2026-03-02 15:00:06")) is None


def test_change_versions_are_told_from_tags() -> None:
    assert is_change_version("2026-11-01T06:10:00Z#000002")
    assert is_change_version("s00000000000000001005#2026-11-01T06:10:00Z#000002")
    assert not is_change_version("backfill") and not is_change_version("")
