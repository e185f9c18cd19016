"""What reconciliation needs of the Klaviyo sandbox: the catalog lists it reads, and the tamper ops that change
state behind the fleet's back (an event's value, a profile deleted, two profiles merged, a catalog entry gone)."""

from __future__ import annotations

from tests.support import klaviyo_bodies as bodies
from tests.unit.sandbox.klaviyo.conftest import Running
from tests.unit.sandbox.klaviyo.test_tamper import VARIANT, profile_id, seeded, state, tamper


def test_catalog_lists_page_and_filter_by_ids(klaviyo: Running) -> None:
    seeded(klaviyo)
    items = klaviyo.client.get("/api/catalog-items").json()
    variants = klaviyo.client.get("/api/catalog-variants", params={"page[size]": 100}).json()
    assert len(items["data"]) == 1 and [v["id"] for v in variants["data"]] == [VARIANT]
    assert variants["data"][0]["attributes"]["inventory_quantity"] == 3
    none = klaviyo.client.get("/api/catalog-variants", params={"filter": 'any(ids,["nope"])'}).json()
    assert none["data"] == []
    assert klaviyo.client.get("/api/catalog-variants", params={"page[size]": 101}).status_code == 400


def test_set_event_changes_its_value_and_properties(klaviyo: Running) -> None:
    seeded(klaviyo)
    event = state(klaviyo)["events"]["Placed Order"][0]
    tamper(klaviyo, {"op": "set_event", "event_id": event["id"], "value": 1.5, "properties": {"Note": "x"}})
    after = next(e for e in state(klaviyo)["events"]["Placed Order"] if e["id"] == event["id"])
    assert after["value"] == 1.5 and after["properties"]["Note"] == "x"


def test_delete_profile_takes_its_events_and_frees_its_identifiers(klaviyo: Running) -> None:
    seeded(klaviyo)
    ann = profile_id(klaviyo, "ann@example.com")
    tamper(klaviyo, {"op": "delete_profile", "profile_id": ann})
    after = state(klaviyo)
    assert ann not in after["profiles"] and not after["events"].get("Placed Order")
    assert klaviyo.client.post("/api/profile-import", json=bodies.profile_import(email="ann@example.com")
                               ).status_code == 201


def test_merge_profiles_moves_the_events_and_removes_the_source(klaviyo: Running) -> None:
    seeded(klaviyo)
    ann, bob = profile_id(klaviyo, "ann@example.com"), profile_id(klaviyo, "bob@example.com")
    result = tamper(klaviyo, {"op": "merge_profiles", "source_id": ann, "destination_id": bob})
    assert result["results"][0]["events_moved"] == 2
    after = state(klaviyo)
    assert ann not in after["profiles"] and after["profiles"][bob]["email"] == "bob@example.com"
    assert {e["profile_id"] for e in after["events"]["Placed Order"]} == {bob}
    events = klaviyo.client.get("/api/events", params={"filter": f'equals(profile_id,"{bob}")'}).json()["data"]
    assert len(events) == 2
    tamper(klaviyo, {"op": "merge_profiles", "source_id": bob, "destination_id": bob}, status=400)


def test_delete_catalog_variant_and_item(klaviyo: Running) -> None:
    seeded(klaviyo)
    tamper(klaviyo, {"op": "delete_catalog", "kind": "catalog-variant", "id": VARIANT})
    assert state(klaviyo)["catalog"]["variants"] == {}
    item = next(iter(state(klaviyo)["catalog"]["items"]))
    tamper(klaviyo, {"op": "delete_catalog", "kind": "catalog-item", "id": item})
    assert state(klaviyo)["catalog"]["items"] == {}
    tamper(klaviyo, {"op": "delete_catalog", "kind": "catalog-item", "id": item}, status=400)
