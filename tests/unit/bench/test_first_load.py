"""bench/first_load.py's verdict on hand-built states: how profiles fall on customers, what counts as a
duplicate_profile response, and which findings fail the run (the fleet run itself: `python -m bench.first_load`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench.first_load import FirstLoadResult, ProfileTally, conflicts, tally_profiles
from testing.oracle import expected_state
from tests.unit.testing.tenant import customer, dump, line, order


def profile(pid: str, email: str | None = None, phone: str | None = None,
            external_id: str | None = None) -> dict[str, Any]:
    return {"id": pid, "email": email, "phone_number": phone, "external_id": external_id, "properties": {}}


def tenant() -> dict[str, Any]:
    return dump(customer=[
        customer("C1", phone="+12125550101"), customer("C2", phone="+12125550102"), customer("C3"), customer("C4"),
        customer("WEBGUEST", email="web@shop.example.com"),
    ], order=[order("100001", "WEBGUEST", [line(1, 1, 10.0)], email="shopper@example.com")])


def test_profiles_fall_on_customers_guests_and_nobody() -> None:
    erp = tenant()
    state = {"profiles": {p["id"]: p for p in (
        profile("P1", "c1@example.com", "+12125550101", "C1"),
        profile("P2", "c2@example.com", None, "C2"),
        profile("P3", None, "+12125550102"),  # C2's phone on a second profile: a split customer
        profile("P4", "c3@example.com"),  # C3's only profile, made before its upsert: no external_id
        profile("P5", "shopper@example.com"),  # the guest shopper's
        profile("P6", "stranger@example.com"),  # nobody's
    )}}
    tally = tally_profiles(erp, expected_state(erp), state)
    assert (tally.customers_in_erp, tally.customers_expected, tally.guests_expected) == (5, 4, 1)
    assert (tally.customers_with_one, tally.customers_with_several, tally.customers_with_none) == (2, 1, 1)
    assert tally.most_profiles_on_one_customer == 2
    assert (tally.profiles_without_external_id, tally.customer_profiles_without_external_id) == (4, 2)
    assert (tally.guest_profiles, tally.profiles_of_nobody, tally.profiles_of_nobody_tolerated) == (1, 1, 0)
    assert tally.customer_profiles == 4 and tally.profiles_per_customer == 1.0


def test_duplicate_profile_responses_are_profile_import_409s_and_failed_import_rows() -> None:
    stats = {"endpoints": {
        "POST /api/profile-import": {"statuses": {"200": 40, "409": 3}},
        "POST /api/catalog-variants": {"statuses": {"201": 5, "409": 1}},  # another 409: not a profile's
        "POST /api/events": {"statuses": {"202": 100}},
    }}
    jobs = {"J1": {"errors": [{"code": "duplicate_profile"}, {"code": "invalid"}]}, "J2": {"errors": []},
            "J3": {"errors": [{"code": "duplicate_profile"}]}}
    duplicates, by_endpoint = conflicts(stats, {"jobs": jobs})
    assert duplicates == 5
    assert by_endpoint == {"POST /api/profile-import": 3, "POST /api/catalog-variants": 1}


def clean_tally(**changes: int) -> ProfileTally:
    tally = ProfileTally(
        customers_in_erp=5, customers_expected=4, email_opted_in=2, sms_opted_in=1, guests_expected=1,
        klaviyo_profiles=5, customers_with_one=4, customers_with_none=0, customers_with_several=0,
        most_profiles_on_one_customer=1, profiles_without_external_id=1, customer_profiles_without_external_id=0,
        guest_profiles=1, profiles_of_several_customers=0, profiles_of_nobody=0, profiles_of_nobody_tolerated=0)
    return replace(tally, **changes)


def result(**changes: Any) -> FirstLoadResult:
    fields: dict[str, Any] = {
        "phase": "first load", "customers": 4, "orders": 1, "rate_scale": 1.0, "concurrency": 2, "tally": clean_tally(),
        "duplicate_profile_responses": 0, "conflicts_by_endpoint": {}, "throttled_429": 7, "requests_by_endpoint": {},
        "dead_letters": {}, "exceptions": {}, "oracle": {"profiles_split": 0, "consent_wrong": 3},
        "oracle_report": "", "minutes": 1.5, "timeout_minutes": 10.0, "peak_worker_rss_mb": 80.0}
    return FirstLoadResult(**(fields | changes))


def test_a_clean_load_passes_and_each_fault_fails_it() -> None:
    assert result().problems() == []  # 429s and other oracle kinds are reported, not judged
    failing = {
        "with more than one": result(tally=clean_tally(customers_with_several=1)),
        "without a Klaviyo profile": result(tally=clean_tally(customers_with_none=1)),
        "without an external_id": result(tally=clean_tally(customer_profiles_without_external_id=1)),
        "duplicate_profile": result(duplicate_profile_responses=2),
        "dead letter": result(dead_letters={"profiles.upsert": 1}),
        "not quiescent": result(minutes=None),
        "profiles_split": result(oracle={"profiles_split": 1}),
    }
    for words, failed in failing.items():
        problems = failed.problems()
        assert len(problems) == 1 and words in problems[0], (words, problems)
        assert failed.as_json()["ok"] is False
