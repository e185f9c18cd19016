"""The real poller against the Blue Cherry sandbox across the November fall-back in New York: a subscribe
written at 01:50 EDT and an unsubscribe written an hour of wall clock "earlier", at 01:10 EST, are read in
two polls and versioned in the order they happened (issue 13, item 4)."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from sync.changes import ChangeEvent, version_stamp
from tests.integration.poller.conftest import Sandbox
from tests.support.poller import make_poller

pytestmark = pytest.mark.integration


def sandbox_clock(sandbox: Sandbox) -> datetime:
    """The sandbox's true time: the fleet reads the ERP "now", whatever the sandbox clock was set to."""
    response = httpx.get(f"{sandbox.url}/_sandbox/clock", timeout=10)
    response.raise_for_status()
    return datetime.fromisoformat(response.json()["utc"])


def test_unsubscribe_at_0110_est_is_versioned_after_subscribe_at_0150_edt(
    sandbox: Sandbox, redis_url: str
) -> None:
    events: list[ChangeEvent] = []
    poller = make_poller(redis_url, sandbox.url, clock=lambda: sandbox_clock(sandbox))
    poller.emit = events.extend

    sandbox.clock(timezone="America/New_York", now="2026-11-01 01:50:00", fold=0, freeze=True)  # 05:50Z
    sandbox.apply({"op": "create_customer", "customer": "DSTV", "email_optin": True})
    sandbox.clock(advance=120)  # read at 01:52 EDT
    poller.run_once()  # the tenant's seed records too

    sandbox.clock(now="2026-11-01 01:10:00", fold=1, freeze=True)  # the second 01:10: EST, 06:10Z
    assert sandbox_clock(sandbox).isoformat() == "2026-11-01T06:10:00+00:00"
    sandbox.apply({"op": "consent", "customer": "DSTV", "channel": "email", "optin": False})
    sandbox.clock(advance=600)  # read at 01:20 EST
    assert poller.run_once()["customer"].emitted == 1

    subscribe, unsubscribe = [e for e in events if e.record.get("customer") == "DSTV"]
    assert (subscribe.record["email_optin"], subscribe.last_mod) == ("Y", "2026-11-01 01:50:00")
    assert (unsubscribe.record["email_optin"], unsubscribe.last_mod) == ("N", "2026-11-01 01:10:00")
    assert version_stamp(subscribe.version) == "2026-11-01T05:50:00Z"
    assert version_stamp(unsubscribe.version) == "2026-11-01T06:10:00Z"
    assert unsubscribe.version > subscribe.version
