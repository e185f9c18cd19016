"""State loss cannot undo an opt-out (issue 13, item 3). An unsubscribe is failing against Klaviyo (503s) and
waits in the fleet's delayed schedule when Redis loses the fleet's state; the re-scan that follows finds the
customer "not subscribed" with a dated opt-out newer than the subscribe Klaviyo holds, and unsubscribes. The
re-scan does not flood the fast lane: a customer whose last change is days old is re-synced on the batch
lane; the recent change goes fast. Real poller, real fast/batch workers at concurrency 2, both sandboxes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sync.changes import ChangeEvent
from tests.integration.customers.conftest import UNSUBSCRIBE, CustomerFleet, marketing
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration
TWO_DAYS = 2 * 86400


def _faults(fleet: CustomerFleet, **settings: Any) -> None:
    httpx.post(f"{fleet.klaviyo_url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()


def test_an_unsubscribe_lost_with_the_fleet_s_state_is_sent_by_the_re_scan(fleet: CustomerFleet) -> None:
    old = fleet.new_customer(email="old.rescan@example.com", email_optin="Y")["customer"]
    leaving = fleet.new_customer(email="leaving.rescan@example.com", email_optin="Y")["customer"]
    fleet.poll()
    for code in (old, leaving):
        fleet.wait_profile(code, lambda p: marketing(p, "email") == "SUBSCRIBED", f"{code} subscribed")
    fleet.wait_idle()

    # two days on in the ERP, the customer opts out while Klaviyo's unsubscribe endpoint fails
    httpx.post(f"{fleet.bc_url}/_sandbox/clock", json={"advance": TWO_DAYS}, timeout=10).raise_for_status()
    _faults(fleet, error_rates={"503": 1.0}, endpoints=[UNSUBSCRIBE])
    try:
        fleet.consent(leaving, "email", False)
        assert fleet.poller().run_once()["customer"].emitted == 1
        wait_for(lambda: fleet.received(UNSUBSCRIBE) > 0, 30, message="the unsubscribe's first (failed) attempt")
        assert fleet.busy() > 0, "the unsubscribe waits to be retried"
        assert fleet.flush_state() > 0  # Redis loses the fleet's state: the waiting unsubscribe with it
    finally:
        _faults(fleet, error_rates={}, endpoints=None)
    assert marketing(fleet.profile(leaving) or {}, "email") == "SUBSCRIBED"

    emitted: list[ChangeEvent] = []
    poller = fleet.poller()
    real_emit = poller.emit

    def recording(events: list[ChangeEvent]) -> None:
        emitted.extend(events)
        real_emit(events)

    poller.emit = recording
    try:
        fleet.poll()  # the re-scan: no watermark, no fingerprints
    finally:
        poller.emit = real_emit
    fleet.wait_profile(leaving, lambda p: marketing(p, "email") == "UNSUBSCRIBED", "the lost opt-out, re-sent")
    fleet.wait_idle()

    by_code = {e.record["customer"]: (e.kind, e.lane) for e in emitted}
    assert by_code[leaving] == ("created", "fast")  # changed minutes ago (ERP time): a change, not history
    assert by_code[old] == ("resynced", "batch")  # two days old: re-synced without crowding the fast lane
    assert marketing(fleet.profile(old) or {}, "email") == "SUBSCRIBED"
    assert fleet.exceptions.get("consent_conflict", f"customer:{leaving}") is None
    assert fleet.dead_letters() == 0
