"""Compliance: a subscribe still in flight when a newer unsubscribe of the same person comes never leaves the
person subscribed. Real workers on two lanes, the Klaviyo sandbox holding the subscribe back: the unsubscribe
waits until the subscribe's job is read back applied (one consent job in flight per customer and channel),
then lands last."""

from __future__ import annotations

import pytest

from state.ledger import Ledger
from sync.operations import Operation
from tests.integration.delivery.test_fleet_delivery import profile_op
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration

SUBSCRIBE = "POST /api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "POST /api/profile-subscription-bulk-delete-jobs"
KEY = "consent:email:C00001"


def consent(kind: str, version: str, lane: str) -> Operation:
    payload: dict = {"channel": "email", "profile": {"email": "shopper1@example.com"}, "list_id": None}
    if kind == "subscribe":
        payload.update({"custom_source": "Blue Cherry ERP", "consented_at": None, "historical_import": False})
    return Operation(kind=kind, key=KEY, lane=lane, payload=payload, version=version, record="customer:C00001",
                     profile_of="C00001")


def email_consent(fleet) -> str | None:
    for profile in fleet.state()["profiles"].values():
        if profile.get("external_id") == "C00001":
            return ((profile.get("subscriptions") or {}).get("email") or {}).get("marketing", {}).get("consent")
    return None


def test_a_newer_unsubscribe_waits_for_the_subscribe_in_flight_and_lands_last(fleet_factory):
    fleet = fleet_factory()
    fleet.worker("fast")
    fleet.worker("batch")
    fleet.submit([profile_op(1)])
    wait_for(lambda: fleet.external_ids() == ["C00001"], 60, message="the profile")
    # the subscribe (older ERP version, slow batch lane) is held back inside Klaviyo for 2 s ...
    fleet.faults(latency_ms=2000, endpoints=[SUBSCRIBE])
    fleet.publish_single([consent("subscribe", "2026-11-26T10:00:00Z#000001", "batch")])
    wait_for(lambda: fleet.stats()["endpoints"].get(SUBSCRIBE, {}).get("received", 0) >= 1, 30,
             message="the subscribe in flight")
    # ... while the customer's newer unsubscribe comes on the fast lane: it waits for the subscribe's job
    fleet.publish_single([consent("unsubscribe", "2026-11-26T10:05:00Z#000001", "fast")])
    wait_for(lambda: email_consent(fleet) == "SUBSCRIBED", 30, message="the subscribe applied")
    wait_for(lambda: email_consent(fleet) == "UNSUBSCRIBED", 30, message="the person unsubscribed in the end")
    unsubscribes = fleet.stats()["endpoints"][UNSUBSCRIBE]
    assert unsubscribes["accepted"] == 1, "sent once, after the subscribe: nothing crossed, nothing to undo"
    entry = Ledger(fleet.redis, fleet.prefix).get(KEY)
    assert entry is not None and entry.endpoint == "unsubscribe"  # the older subscribe never replaced it
    assert fleet.dead_letters() == 0
