"""A first load of 100 customers with orders and mixed consent into an empty Klaviyo account, while Klaviyo
holds profile upserts back: exactly one profile per customer with the right email, phone and external_id, no
409 `duplicate_profile`, no dead letter - then the same after the fleet's Redis is flushed and everything is
re-scanned, and after `bcsync backfill customers` (issue 12). Every lane at concurrency 2, beat and the poller
as processes, Blue Cherry trading live; truth by the independent oracle (testing/oracle)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest

from bench.drill_fleet import DrillFleet, DrillSize
from tests.support.fleet import ROOT

pytestmark = pytest.mark.integration

# 100 keeps the suite short; `python -m bench.first_load --customers 300 --rescan` runs the same at scale
SIZE = DrillSize(customers=100, styles=4, orders=100, warmup_seconds=0, fault_seconds=0, patience_seconds=420)
# every profile upsert answered 0.3 s late: subscribes, order events and aggregates would overtake them
HELD_BACK = {"latency_ms": 300, "endpoints": ["POST /api/profile-import", "POST /api/profile-bulk-import-jobs"]}
LIVE_SECONDS = 10.0
PROFILE_COUNTS = ("profiles_missing", "profiles_split", "profiles_extra", "profiles_wrong", "consent_wrong")


def duplicate_profile_answers(fleet: DrillFleet) -> int:
    endpoints = fleet.klaviyo_control("stats")["endpoints"].values()
    return sum(int(e.get("statuses", {}).get("409", 0)) for e in endpoints)


def profiles_per_customer(fleet: DrillFleet) -> Counter[int]:
    """How many Klaviyo profiles hold each ERP customer code: {1: n} when every customer has one."""
    codes = {c["customer"] for c in fleet.bluecherry("dump")["resources"]["customer"]}
    held = Counter(p.get("external_id") for p in fleet.klaviyo_control("state")["profiles"].values())
    return Counter(held.get(code, 0) for code in codes)


def assert_one_profile_each(fleet: DrillFleet, phase: str) -> None:
    waited = fleet.wait_quiescent()
    diff = fleet.oracle_diff()
    counts = diff.counts()
    summary = f"{phase}: {counts}\n{diff.report()}"
    assert waited is not None, summary
    assert {name: counts[name] for name in PROFILE_COUNTS} == dict.fromkeys(PROFILE_COUNTS, 0), summary
    assert counts["events_missing"] == counts["events_duplicated"] == 0, summary
    assert duplicate_profile_answers(fleet) == 0, phase
    dead = fleet.dead_letters_by_kind()  # the catalog too: an existing one is updated, never dead-lettered
    assert dead == {}, f"{phase}: {dead}"
    assert "customer_mismatch" not in fleet.exceptions_by_type(), phase


def run_cli(fleet: DrillFleet, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "workers.cli", *args], cwd=ROOT, env=fleet.env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def fleet() -> Any:
    with DrillFleet(SIZE, klaviyo_faults=HELD_BACK) as fleet:
        yield fleet


def test_a_first_load_makes_one_profile_per_customer(fleet: DrillFleet) -> None:
    fleet.live(True)  # the tenant goes on trading while it is loaded
    time.sleep(LIVE_SECONDS)
    fleet.live(False)
    assert_one_profile_each(fleet, "first load")
    counts = profiles_per_customer(fleet)
    assert set(counts) <= {0, 1} and counts[1] >= SIZE.customers * 0.9, counts  # 0: skipped invalid records


def test_after_the_state_is_lost_a_rescan_still_makes_one_profile_per_customer(fleet: DrillFleet) -> None:
    fleet.redis.flushall()  # ids, versions, watermarks, fingerprints, queues: all gone
    assert_one_profile_each(fleet, "after FLUSHALL and the re-scan")


def test_a_customer_backfill_makes_no_second_profile(fleet: DrillFleet) -> None:
    out = run_cli(fleet, "backfill", "customers", "--since", "2000-01-01 00:00:00")
    assert "customer" in out.lower()
    assert_one_profile_each(fleet, "after bcsync backfill customers")
