"""`bench/drills.py --quick` in the test command: no fault, every worker SIGKILLed with deliveries in flight,
Klaviyo answering 30% 5xx - each from a clean state, every lane at concurrency 2, Blue Cherry trading live, the
end result checked by the independent oracle (testing/oracle). After the no-fault drill the oracle is checked
itself: differences planted in the Klaviyo sandbox are reported exactly, and nothing else; and the tenant's
storefront orders without their reference are reported waiting, with nothing sent under their ERP number."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bench.drill_faults import DRILLS, QUICK_DRILLS
from bench.drill_fleet import QUICK, DrillFleet
from bench.drills import DrillResult, run_drill, run_drill_in

pytestmark = pytest.mark.integration


def assert_nothing_lost_nothing_doubled(result: DrillResult, transient: bool) -> None:
    summary = f"{result.drill}: {result.as_row()}\n{result.examples}"
    assert result.quiescence_seconds is not None, summary
    assert result.counts["events_missing"] == 0, summary
    assert result.counts["events_duplicated"] == 0, summary
    assert result.lost_for_good == 0, summary
    # one profile per customer with the right identifiers, whatever the fault (issue 12)
    for name in ("profiles_missing", "profiles_split", "profiles_extra", "profiles_wrong"):
        assert result.counts[name] == 0, summary
    # the last ERP consent is the one Klaviyo ends with, whatever the fault (issue 13)
    assert result.counts["consent_wrong"] == 0, summary
    # available-to-sell ordered by the ERP, complete figures only (issue 15); lifetime values over the whole
    # history, refunds once (issue 14)
    assert result.counts["stock_wrong"] == 0, summary
    assert result.counts["aggregates_wrong"] == 0, summary
    if transient:
        assert not result.dead_letters, summary


@pytest.mark.parametrize("name", [n for n in QUICK_DRILLS if n != "no_fault"])
def test_quick_drill_loses_and_doubles_nothing(name: str) -> None:
    drill = DRILLS[name]
    assert_nothing_lost_nothing_doubled(run_drill(drill, QUICK), drill.transient)


def _findings(diff: Any) -> Counter[tuple[str, str]]:
    return Counter((f.kind, f.key) for f in diff.findings)


def _plant(fleet: DrillFleet) -> dict[str, str]:
    """One of each difference, on records the oracle found right; returns the planted kind -> a word its finding
    key must contain."""
    state = fleet.klaviyo_control("state")
    diff = fleet.oracle_diff()
    wrong = {f.key for f in diff.findings} | {s.record for s in diff.skipped}
    profiles = [p for p in state["profiles"].values()
                if p.get("external_id") and p.get("email") and not any(p["external_id"] in key for key in wrong)]
    with_orders = [p for p in profiles if (p.get("properties") or {}).get("erp_order_count")]
    aggregate_target = with_orders[0]
    email_target, consent_target = [p for p in profiles if p is not aggregate_target][:2]
    event = next(e for e in state["events"]["Ordered Product"] if not any(e["unique_id"] in key for key in wrong))
    variants = state["catalog"]["variants"]
    variant_id = next(vid for vid, v in variants.items() if f"variant:{v.get('external_id')}" not in wrong)
    variant = variants[variant_id]
    email_now = (consent_target.get("subscriptions") or {}).get("email", {}).get("marketing", {}).get("consent")
    flipped = "UNSUBSCRIBED" if email_now == "SUBSCRIBED" else "SUBSCRIBED"
    results = fleet.klaviyo_control("tamper", [
        {"op": "delete_event", "event_id": event["id"]},
        {"op": "set_consent", "profile_id": consent_target["id"], "channel": "email", "consent": flipped},
        {"op": "set_variant_inventory", "variant_id": variant_id,
         "quantity": int(variant.get("inventory_quantity") or 0) + 5},
        {"op": "add_profile", "attributes": {"email": "planted-extra@example.com"}},
        {"op": "set_profile", "profile_id": email_target["id"], "attributes": {"email": "planted-wrong@example.com"}},
        {"op": "set_profile", "profile_id": aggregate_target["id"],
         "attributes": {"properties": {"erp_order_count": aggregate_target["properties"]["erp_order_count"] + 1}}},
    ])["results"]
    extra_profile = next(r["profile_id"] for r in results if r["op"] == "add_profile")
    return {"events_missing": event["unique_id"], "consent_wrong": consent_target["external_id"],
            "stock_wrong": f"variant:{variant['external_id']}", "profiles_extra": f"profile:{extra_profile}",
            "profiles_wrong": email_target["external_id"], "aggregates_wrong": aggregate_target["external_id"]}


def test_no_fault_drill_then_the_oracle_reports_exactly_what_was_planted() -> None:
    with DrillFleet(QUICK) as fleet:
        result = run_drill_in(fleet, DRILLS["no_fault"])
        assert_nothing_lost_nothing_doubled(result, transient=True)
        diff = fleet.oracle_diff()
        # the tenant's storefront orders without their reference: their events wait, none under the ERP number
        assert diff.waiting, "the drill tenant exercises storefront_ref_missing"
        assert result.exceptions.get("ecommerce/storefront_ref_missing"), result.exceptions
        assert not [f.key for f in diff.findings if "waiting for its reference" in f.detail], diff.report()
        before = _findings(diff)
        planted = _plant(fleet)
        after = _findings(fleet.oracle_diff())
    new = after - before
    gone = before - after
    assert not gone, f"planting hid findings: {gone}"
    assert sorted(kind for kind, _ in new) == sorted(planted), new
    for kind, key in new:
        assert planted[kind] in key, (kind, key, planted[kind])
