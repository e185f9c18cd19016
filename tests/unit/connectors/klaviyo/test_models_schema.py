"""Every body builder's output validates against its endpoint's OpenAPI schema with every object closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from connectors.klaviyo import builders as models

Schema = Callable[[str, str], Draft202012Validator]

PROFILE = {
    "email": "ada@example.com",
    "phone_number": "+12125550100",
    "external_id": "C1001",
    "first_name": "Ada",
    "last_name": None,  # null clears the field in Klaviyo
    "organization": "Acme",
    "locale": "en-US",
    "title": "Buyer",
    "image": "https://img.example.com/a.png",
    "location": {
        "address1": "1 Main St",
        "address2": None,
        "city": "New York",
        "region": "NY",
        "zip": "10001",
        "country": "US",
        "timezone": "America/New_York",
        "latitude": 40.7,
        "longitude": "-74.0",
    },
    "properties": {"Net Lifetime Value": 120.5, "Groups": ["VIP"], "nested": {"a": {"b": 1}}},
    "patch_properties": {"append": {"Tags": "x"}, "unset": ["Old"]},
}


def event(i: int, email: str = "ada@example.com", metric: str = "Placed Order") -> dict[str, Any]:
    return {
        "metric": metric,
        "profile": {"email": email, "external_id": "C1001"},
        "properties": {"OrderId": f"SO{i}", "Items": [{"SKU": "A-1", "Quantity": 2}]},
        "time": "2026-01-02T03:04:05+00:00",
        "value": 99.5,
        "value_currency": "USD",
        "unique_id": f"SO{i}",
        "backfill": False,
    }


ITEM = {
    "external_id": "STYLE1",
    "title": "Shirt",
    "description": "A shirt",
    "url": "https://shop.example.com/p/STYLE1",
    "price": 25.0,
    "image_full_url": "https://img.example.com/s.png",
    "custom_metadata": {"Division": "MEN", "Season": {"code": "FW26"}},
    "published": True,
}

VARIANT = {
    "external_id": "STYLE1-RED-M",
    "item_external_id": "STYLE1",
    "title": "Shirt red M",
    "description": "A shirt",
    "sku": "STYLE1-RED-M",
    "inventory_quantity": 3,
    "inventory_policy": 1,
    "price": 25.0,
    "url": "https://shop.example.com/p/STYLE1?v=RED-M",
    "image_full_url": "https://img.example.com/s.png",
    "published": True,
}


def assert_valid(validator: Draft202012Validator, body: dict[str, Any] | models.Encoded) -> None:
    if isinstance(body, models.Encoded):  # what the client sends: the bytes, read back
        body = body.body
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, problems


def test_closed_schema_refuses_undeclared_fields(request_schema: Schema) -> None:
    """The schemas really are closed: the check below would catch an extra attribute."""
    validator = request_schema("POST", "/api/profile-subscription-bulk-create-jobs")
    body = models.subscribe_body([{"channel": "email", "profile": {"email": "a@example.com"}}])[0].body
    assert_valid(validator, body)
    body["data"]["attributes"]["profiles"]["data"][0]["attributes"]["last_name"] = "X"
    assert not validator.is_valid(body)
    free = models.profile_import_body({"email": "a@example.com", "properties": {"anything": {"goes": 1}}})
    assert_valid(request_schema("POST", "/api/profile-import"), free)


def test_profile_import(request_schema: Schema) -> None:
    body = models.profile_import_body(PROFILE).body
    assert_valid(request_schema("POST", "/api/profile-import"), body)
    assert body["data"]["attributes"]["last_name"] is None
    assert body["data"]["meta"]["patch_properties"]["unset"] == ["Old"]


def test_bulk_profile_import(request_schema: Schema) -> None:
    bulk = models.bulk_profile_import_body([PROFILE, {"external_id": "C2"}], list_id="L1")
    assert_valid(request_schema("POST", "/api/profile-bulk-import-jobs"), bulk.body)
    assert bulk.rows == [[0], [1]]


def test_event(request_schema: Schema) -> None:
    assert_valid(request_schema("POST", "/api/events"), models.event_body(event(1)))


def test_bulk_events_grouped_per_profile(request_schema: Schema) -> None:
    payloads = [event(1), event(2, "bob@example.com"), event(3), event(4, metric="Fulfilled Order")]
    bulk = models.bulk_events_body(payloads)
    assert_valid(request_schema("POST", "/api/event-bulk-create-jobs"), bulk.body)
    groups = bulk.body["data"]["attributes"]["events-bulk-create"]["data"]
    assert [len(g["attributes"]["events"]["data"]) for g in groups] == [3, 1]
    assert bulk.rows == [[0, 2, 3], [1]]
    assert bulk.payloads_of_rows([1]) == [1]


def test_subscribe_one_job_per_combination(request_schema: Schema) -> None:
    payloads: list[dict[str, Any]] = [
        {"channel": "email", "profile": {"email": "a@example.com", "id": "01PROFILEC1"}, "list_id": "L1"},
        {"channel": "sms", "profile": {"phone_number": "+12125550100"}, "list_id": "L1"},
        {"channel": "email", "profile": {"email": "b@example.com"}, "list_id": "L1", "custom_source": "ERP"},
        {
            "channel": "email",
            "profile": {"email": "c@example.com"},
            "list_id": None,
            "historical_import": True,
            "consented_at": "2020-05-01T00:00:00+00:00",
        },
        {"channel": "email", "profile": {"email": "d@example.com"}, "list_id": "L1", "consented_at": None},
    ]
    jobs = models.subscribe_body(payloads)
    validator = request_schema("POST", "/api/profile-subscription-bulk-create-jobs")
    for job in jobs:
        assert_valid(validator, job.body)
    assert [job.rows for job in jobs] == [[[0], [4]], [[1]], [[2]], [[3]]]
    # the profile's Klaviyo id goes on the resource (Klaviyo looks the profile up by it), not in attributes
    first = jobs[0].body["data"]["attributes"]["profiles"]["data"][0]
    assert first["id"] == "01PROFILEC1" and "id" not in first["attributes"]
    historical = jobs[3].body["data"]
    assert historical["attributes"]["historical_import"] is True
    assert "relationships" not in historical
    consent = historical["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]["email"]
    assert consent["marketing"]["consented_at"] == "2020-05-01T00:00:00+00:00"


def test_unsubscribe(request_schema: Schema) -> None:
    jobs = models.unsubscribe_body(
        [
            {"channel": "email", "profile": {"email": "a@example.com"}, "list_id": None},
            {"channel": "sms", "profile": {"phone_number": "+12125550100"}, "list_id": None},
        ]
    )
    for job in jobs:
        assert_valid(request_schema("POST", "/api/profile-subscription-bulk-delete-jobs"), job.body)
    assert len(jobs) == 2


def test_catalog_single_bodies(request_schema: Schema) -> None:
    assert_valid(request_schema("POST", "/api/catalog-items"), models.catalog_item_body(ITEM))
    assert_valid(
        request_schema("PATCH", "/api/catalog-items/{id}"),
        models.catalog_item_update_body({**ITEM, "published": False}),
    )
    assert_valid(request_schema("POST", "/api/catalog-variants"), models.catalog_variant_create_body(VARIANT))
    update = models.catalog_variant_update_body(VARIANT).body
    assert_valid(request_schema("PATCH", "/api/catalog-variants/{id}"), update)
    assert update["data"]["id"] == "$custom:::$default:::STYLE1-RED-M"
    inventory = models.catalog_variant_update_body({"external_id": "STYLE1-RED-M", "inventory_quantity": 0}).body
    assert_valid(request_schema("PATCH", "/api/catalog-variants/{id}"), inventory)
    assert inventory["data"]["attributes"] == {"inventory_quantity": 0}


@pytest.mark.parametrize(
    ("builder", "path", "payload"),
    [
        (models.catalog_bulk_item_create_body, "/api/catalog-item-bulk-create-jobs", ITEM),
        (models.catalog_bulk_item_update_body, "/api/catalog-item-bulk-update-jobs", ITEM),
        (models.catalog_bulk_item_delete_body, "/api/catalog-item-bulk-delete-jobs", {"external_id": "S"}),
        (models.catalog_bulk_variant_create_body, "/api/catalog-variant-bulk-create-jobs", VARIANT),
        (models.catalog_bulk_variant_update_body, "/api/catalog-variant-bulk-update-jobs", VARIANT),
        (
            models.catalog_bulk_variant_delete_body,
            "/api/catalog-variant-bulk-delete-jobs",
            {"external_id": "V"},
        ),
    ],
)
def test_catalog_bulk_bodies(
    request_schema: Schema,
    builder: Callable[[list[dict[str, Any]]], models.BulkBody],
    path: str,
    payload: Any,
) -> None:
    rows = [{**payload, "external_id": f"{payload['external_id']}-{i}"} for i in range(100)]
    bulk = builder(rows)
    assert_valid(request_schema("POST", path), bulk.body)
    assert len(bulk.rows) == 100
    with pytest.raises(models.PayloadError, match="101 rows"):
        builder([*rows, payload])


def test_back_in_stock_and_deletion(request_schema: Schema) -> None:
    bis = models.back_in_stock_body(
        {"channels": ["EMAIL"], "profile": {"email": "a@example.com"}, "variant_external_id": "V1"}
    )
    assert_valid(request_schema("POST", "/api/back-in-stock-subscriptions"), bis)
    for profile in ({"email": "a@example.com"}, {"phone_number": "+12125550100"}, {"id": "01ABC"}):
        body = models.deletion_body({"profile": profile})
        assert_valid(request_schema("POST", "/api/data-privacy-deletion-jobs"), body)
