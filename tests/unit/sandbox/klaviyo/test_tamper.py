"""POST /_sandbox/tamper: differences planted in the stored state, each seen in GET /_sandbox/state."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import Running

VARIANT = bodies.VARIANT_PREFIX + "SKU-1"


def tamper(running: Running, *ops: dict[str, Any], status: int = 200) -> Any:
    response = httpx.post(f"{running.url}/_sandbox/tamper", json=list(ops))
    assert response.status_code == status, response.text
    return response.json()


def state(running: Running) -> dict[str, Any]:
    return dict(httpx.get(f"{running.url}/_sandbox/state").json())


def profile_id(running: Running, email: str) -> str:
    return next(p["id"] for p in state(running)["profiles"].values() if p["email"] == email)


def seeded(running: Running) -> None:
    """Two profiles (one subscribed), two events of one metric for Ann, a variant with stock 3."""
    client = running.client
    client.post("/api/events", json=bodies.event(unique_id="order-1"))
    client.post("/api/events", json=bodies.event(unique_id="order-2"))
    client.post("/api/profile-import", json=bodies.profile_import(email="bob@example.com", external_id="C2"))
    client.post(
        "/api/profile-subscription-bulk-create-jobs",
        json=bodies.subscribe([bodies.email_subscribed("ann@example.com")]),
    )
    client.post("/api/catalog-items", json=bodies.catalog_item())
    client.post("/api/catalog-variants", json=bodies.catalog_variant())
    client.post("/_sandbox/complete-jobs")


def find_profiles(running: Running, filter: str) -> list[dict[str, Any]]:
    response = running.client.get("/api/profiles", params={"filter": filter})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_delete_event_forgets_it_as_if_never_received(klaviyo: Running) -> None:
    seeded(klaviyo)
    first, second = state(klaviyo)["events"]["Placed Order"]
    assert tamper(klaviyo, {"op": "delete_event", "event_id": first["id"]}) == {
        "results": [{"op": "delete_event", "event_id": first["id"]}]
    }
    after = state(klaviyo)
    assert [e["id"] for e in after["events"]["Placed Order"]] == [second["id"]]
    assert after["counts"]["events"] == 1
    assert klaviyo.client.post("/api/events", json=bodies.event(unique_id="order-1")).status_code == 202
    again = state(klaviyo)  # the dedup bookkeeping forgot it too: the repeat is stored, not suppressed
    assert again["counts"]["events"] == 2 and again["duplicates_suppressed"] == 0
    tamper(klaviyo, *({"op": "delete_event", "event_id": e["id"]} for e in again["events"]["Placed Order"]))
    emptied = state(klaviyo)  # no event left of the metric: the metric goes too
    assert emptied["events"] == {} and emptied["metrics"] == {} and emptied["counts"]["events"] == 0


def test_set_profile_changes_attributes_and_keeps_identity_indexes(klaviyo: Running) -> None:
    seeded(klaviyo)
    ann = profile_id(klaviyo, "ann@example.com")
    tamper(klaviyo, {"op": "set_profile", "profile_id": ann, "attributes": {
        "email": "ann.new@example.com", "phone_number": "+12125550100", "external_id": "C1", "first_name": "Annie",
        "properties": {"erp_order_count": 99}}})  # fmt: skip
    profile = state(klaviyo)["profiles"][ann]
    assert (profile["email"], profile["phone_number"], profile["external_id"], profile["first_name"]) == (
        "ann.new@example.com", "+12125550100", "C1", "Annie")  # fmt: skip
    assert profile["properties"]["erp_order_count"] == 99
    assert [p["id"] for p in find_profiles(klaviyo, 'equals(email,"ann.new@example.com")')] == [ann]
    assert [p["id"] for p in find_profiles(klaviyo, 'equals(external_id,"C1")')] == [ann]
    assert find_profiles(klaviyo, 'equals(email,"ann@example.com")') == []  # the old email is free again
    tamper(klaviyo, {"op": "set_profile", "profile_id": ann, "attributes": {"properties": {"erp_order_count": None}}})
    assert "erp_order_count" not in state(klaviyo)["profiles"][ann]["properties"]


def test_set_consent_as_the_state_shows_it(klaviyo: Running) -> None:
    seeded(klaviyo)
    ann, bob = profile_id(klaviyo, "ann@example.com"), profile_id(klaviyo, "bob@example.com")
    tamper(
        klaviyo,
        {"op": "set_consent", "profile_id": ann, "channel": "email", "consent": "UNSUBSCRIBED"},
        {"op": "set_consent", "profile_id": bob, "channel": "sms", "consent": "SUBSCRIBED"},
        {"op": "set_consent", "profile_id": bob, "channel": "email", "consent": "SUBSCRIBED"},
    )
    profiles = state(klaviyo)["profiles"]
    ann_email = profiles[ann]["subscriptions"]["email"]["marketing"]
    assert ann_email["consent"] == "UNSUBSCRIBED" and ann_email["can_receive_email_marketing"] is False
    assert profiles[bob]["subscriptions"]["sms"]["marketing"]["consent"] == "SUBSCRIBED"
    assert profiles[bob]["subscriptions"]["email"]["marketing"]["consent"] == "SUBSCRIBED"
    tamper(klaviyo, {"op": "set_consent", "profile_id": ann, "channel": "email", "consent": "NEVER_SUBSCRIBED"})
    ann_email = state(klaviyo)["profiles"][ann]["subscriptions"]["email"]["marketing"]
    assert ann_email["consent"] == "NEVER_SUBSCRIBED" and ann_email["suppression"] == []


def test_set_variant_inventory(klaviyo: Running) -> None:
    seeded(klaviyo)
    assert state(klaviyo)["catalog"]["variants"][VARIANT]["inventory_quantity"] == 3
    tamper(klaviyo, {"op": "set_variant_inventory", "variant_id": VARIANT, "quantity": 7})
    assert state(klaviyo)["catalog"]["variants"][VARIANT]["inventory_quantity"] == 7
    assert (
        klaviyo.client.get(f"/api/catalog-variants/{VARIANT}").json()["data"]["attributes"]["inventory_quantity"] == 7
    )


def test_add_profile_returns_its_id(klaviyo: Running) -> None:
    seeded(klaviyo)
    (result,) = tamper(klaviyo, {"op": "add_profile", "attributes": {
        "email": "ghost@example.com", "external_id": "C9", "last_name": "Ghost", "properties": {"erp": True}}})[
        "results"]  # fmt: skip
    profile = state(klaviyo)["profiles"][result["profile_id"]]
    assert (profile["email"], profile["external_id"], profile["last_name"], profile["properties"]) == (
        "ghost@example.com", "C9", "Ghost", {"erp": True})  # fmt: skip
    assert [p["id"] for p in find_profiles(klaviyo, 'equals(external_id,"C9")')] == [result["profile_id"]]
    assert state(klaviyo)["counts"]["profiles"] == 3


def test_a_bad_op_refuses_the_whole_list_naming_it(klaviyo: Running) -> None:
    seeded(klaviyo)
    before = state(klaviyo)
    ann, bob = profile_id(klaviyo, "ann@example.com"), profile_id(klaviyo, "bob@example.com")
    event_id = before["events"]["Placed Order"][0]["id"]
    good = {"op": "delete_event", "event_id": event_id}
    refusals = {
        "op #1: unknown op 'drop_table'": {"op": "drop_table"},
        "op #1 (delete_event): unknown event_id 'NOPE'": {"op": "delete_event", "event_id": "NOPE"},
        f"op #1 (delete_event): unknown event_id '{event_id}'": good,  # already deleted by op #0
        "op #1 (set_profile): unknown profile_id 'NOPE'": {"op": "set_profile", "profile_id": "NOPE",
                                                           "attributes": {"first_name": "X"}},
        "op #1 (set_profile): unknown profile attribute(s) ['nickname']": {
            "op": "set_profile", "profile_id": ann, "attributes": {"nickname": "X"}},
        f"op #1 (set_profile): email 'BOB@example.com' already belongs to profile {bob}": {
            "op": "set_profile", "profile_id": ann, "attributes": {"email": "BOB@example.com"}},
        "op #1 (set_consent): 'consent' must be one of": {"op": "set_consent", "profile_id": ann, "channel": "email",
                                                          "consent": "MAYBE"},
        "op #1 (set_variant_inventory): unknown variant_id 'X'": {"op": "set_variant_inventory", "variant_id": "X",
                                                                  "quantity": 1},
        "op #1 (add_profile): a new profile needs one of": {"op": "add_profile", "attributes": {"first_name": "X"}},
        "op #1 (add_profile): external_id 'C2' already belongs to": {"op": "add_profile",
                                                                     "attributes": {"external_id": "C2"}},
    }  # fmt: skip
    for message, bad in refusals.items():
        answer = tamper(klaviyo, good, bad, status=400)
        assert answer["error"].startswith(message), (answer, message)
    for body in (b"", b'{"op": "delete_event"}', b"not json"):
        refused = httpx.post(f"{klaviyo.url}/_sandbox/tamper", content=body)
        assert refused.status_code == 400 and refused.json()["error"], body
    assert state(klaviyo) == before  # nothing applied, not even the good first op


def test_later_ops_see_the_identifiers_earlier_ops_freed_or_took(klaviyo: Running) -> None:
    seeded(klaviyo)
    ann, bob = profile_id(klaviyo, "ann@example.com"), profile_id(klaviyo, "bob@example.com")
    swap = [
        {"op": "set_profile", "profile_id": ann, "attributes": {"email": "tmp@example.com"}},
        {"op": "set_profile", "profile_id": bob, "attributes": {"email": "ann@example.com"}},
        {"op": "set_profile", "profile_id": ann, "attributes": {"email": "bob@example.com"}},
    ]
    tamper(klaviyo, *swap)
    profiles = state(klaviyo)["profiles"]
    assert (profiles[ann]["email"], profiles[bob]["email"]) == ("bob@example.com", "ann@example.com")
    taken = [{"op": "add_profile", "attributes": {"email": "new@example.com"}},
             {"op": "add_profile", "attributes": {"email": "new@example.com"}}]  # fmt: skip
    assert "already belongs" in tamper(klaviyo, *taken, status=400)["error"]
