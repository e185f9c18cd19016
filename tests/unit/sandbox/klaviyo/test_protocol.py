"""Klaviyo's protocol: auth, revision, content type, size limits, JSON:API errors, closed objects."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import jsonschema
import pytest

from sandbox.klaviyo.operations import OPERATIONS
from sandbox.klaviyo.validation import validate_body
from tests.support import klaviyo_bodies as bodies
from tests.support.openapi import klaviyo_openapi
from tests.unit.sandbox.klaviyo.conftest import HEADERS, Running


def assert_error(response: Any, status: int, code: str | None = None, pointer: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert set(error) >= {"id", "status", "code", "title", "detail", "source"}
    assert "pointer" in error["source"]
    if code:
        assert error["code"] == code
    if pointer:
        assert pointer in [e["source"]["pointer"] for e in response.json()["errors"]]
    return error


def test_missing_authorization_is_401(klaviyo: Running) -> None:
    response = klaviyo.client.post("/api/events", json=bodies.event(), headers={"Authorization": "pk_abc"})
    assert_error(response, 401)
    response = klaviyo.client.get("/api/profiles", headers={"Authorization": "Bearer abc"})
    assert_error(response, 401, code="authentication_failed")
    response = klaviyo.client.get("/api/profiles", headers={"Authorization": "Klaviyo-API-Key not-a-key"})
    assert_error(response, 401)


def test_missing_authorization_header_entirely(klaviyo: Running) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != "Authorization"}
    response = httpx.get(f"{klaviyo.url}/api/profiles", headers=headers)
    assert_error(response, 401, code="not_authenticated")


def test_missing_or_bad_revision_is_400(klaviyo: Running) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != "revision"}
    response = httpx.get(f"{klaviyo.url}/api/profiles", headers=headers)
    error = assert_error(response, 400)
    assert error["source"]["parameter"] == "revision"
    assert_error(klaviyo.client.get("/api/profiles", headers={"revision": "latest"}), 400)


def test_wrong_content_type_is_415(klaviyo: Running) -> None:
    response = klaviyo.client.post(
        "/api/events", content=json.dumps(bodies.event()), headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 415)
    plain_json = klaviyo.client.post(
        "/api/events", content=json.dumps(bodies.event()), headers={"Content-Type": "application/json"}
    )
    assert plain_json.status_code == 202


def test_request_over_5_mb_is_413(klaviyo: Running) -> None:
    body = bodies.event(properties={f"k{i}": "x" * 60_000 for i in range(90)})
    assert_error(klaviyo.client.post("/api/events", json=body), 413)


def test_profile_import_over_100_kb_is_413(klaviyo: Running) -> None:
    body = bodies.profile_import(email="a@example.com", properties={f"k{i}": "x" * 50_000 for i in range(3)})
    assert_error(klaviyo.client.post("/api/profile-import", json=body), 413)


def test_string_over_100_kb_is_refused_with_pointer(klaviyo: Running) -> None:
    body = bodies.event(properties={"note": "x" * (100 * 1024 + 1)})
    assert_error(klaviyo.client.post("/api/events", json=body), 400, pointer="/data/attributes/properties/note")


def test_invalid_json_and_unknown_routes(klaviyo: Running) -> None:
    assert_error(klaviyo.client.post("/api/events", content=b"{not json"), 400)
    assert_error(klaviyo.client.get("/api/nothing-here"), 404)
    assert_error(klaviyo.client.delete("/api/events"), 405)


def test_schema_errors_carry_pointers(klaviyo: Running) -> None:
    body = bodies.event()
    body["data"]["attributes"]["value"] = "ten"
    del body["data"]["attributes"]["metric"]
    response = klaviyo.client.post("/api/events", json=body)
    assert_error(response, 400, code="invalid", pointer="/data/attributes/value")
    pointers = [e["source"]["pointer"] for e in response.json()["errors"]]
    assert "/data/attributes/metric" in pointers
    wrong_type = bodies.event()
    wrong_type["data"]["type"] = "profile"
    assert_error(klaviyo.client.post("/api/events", json=wrong_type), 400, pointer="/data/type")


# (endpoint, valid body, path to a declared object in it, the resource named in the error)
def _undeclared_cases() -> list[tuple[str, str, dict[str, Any], list[str | int], str]]:
    return [
        (
            "POST",
            "/api/events",
            bodies.event(),
            ["data", "attributes", "profile", "data", "attributes"],
            "profile",
        ),
        ("POST", "/api/events", bodies.event(), ["data", "attributes"], "event"),
        (
            "POST",
            "/api/event-bulk-create-jobs",
            bodies.bulk_events([({"email": "a@example.com"}, [bodies.bulk_event()])]),
            [
                "data",
                "attributes",
                "events-bulk-create",
                "data",
                0,
                "attributes",
                "events",
                "data",
                0,
                "attributes",
            ],
            "event",
        ),
        (
            "POST",
            "/api/profile-import",
            bodies.profile_import(email="a@example.com"),
            ["data", "attributes"],
            "profile",
        ),
        (
            "POST",
            "/api/profile-import",
            bodies.profile_import(email="a@example.com", location={"city": "Leeds"}),
            ["data", "attributes", "location"],
            "profile",
        ),
        (
            "POST",
            "/api/profile-bulk-import-jobs",
            bodies.bulk_import([{"email": "a@example.com"}]),
            ["data", "attributes", "profiles", "data", 0, "attributes"],
            "profile",
        ),
        (
            "POST",
            "/api/profile-subscription-bulk-create-jobs",
            bodies.subscribe([bodies.email_subscribed("a@example.com")]),
            ["data", "attributes", "profiles", "data", 0, "attributes"],
            "profile",
        ),
        (
            "POST",
            "/api/profile-subscription-bulk-create-jobs",
            bodies.subscribe([bodies.email_subscribed("a@example.com")]),
            ["data", "attributes"],
            "profile-subscription-bulk-create-job",
        ),
        (
            "POST",
            "/api/profile-subscription-bulk-delete-jobs",
            bodies.unsubscribe([bodies.email_unsubscribed("a@example.com")]),
            ["data", "attributes", "profiles", "data", 0, "attributes"],
            "profile",
        ),
        ("POST", "/api/catalog-items", bodies.catalog_item(), ["data", "attributes"], "catalog-item"),
        (
            "PATCH",
            "/api/catalog-items/$custom:::$default:::STYLE-1",
            bodies.item_update(title="x"),
            ["data", "attributes"],
            "catalog-item",
        ),
        (
            "POST",
            "/api/catalog-variants",
            bodies.catalog_variant(),
            ["data", "attributes"],
            "catalog-variant",
        ),
        (
            "PATCH",
            "/api/catalog-variants/$custom:::$default:::SKU-1",
            bodies.variant_update(price=1.0),
            ["data", "attributes"],
            "catalog-variant",
        ),
        (
            "POST",
            "/api/catalog-variant-bulk-update-jobs",
            bodies.variant_bulk_update([("SKU-1", {"inventory_quantity": 1})]),
            ["data", "attributes", "variants", "data", 0, "attributes"],
            "catalog-variant",
        ),
        (
            "POST",
            "/api/catalog-variant-bulk-create-jobs",
            bodies.variant_bulk_create([bodies.catalog_variant()]),
            ["data", "attributes", "variants", "data", 0, "attributes"],
            "catalog-variant",
        ),
        (
            "POST",
            "/api/catalog-item-bulk-create-jobs",
            bodies.item_bulk_create([bodies.catalog_item()]),
            ["data", "attributes", "items", "data", 0, "attributes"],
            "catalog-item",
        ),
        (
            "POST",
            "/api/catalog-item-bulk-update-jobs",
            bodies.item_bulk_update([("STYLE-1", {"title": "x"})]),
            ["data", "attributes", "items", "data", 0, "attributes"],
            "catalog-item",
        ),
        (
            "POST",
            "/api/back-in-stock-subscriptions",
            bodies.back_in_stock(),
            ["data", "attributes", "profile", "data", "attributes"],
            "profile",
        ),
        (
            "POST",
            "/api/data-privacy-deletion-jobs",
            bodies.deletion("a@example.com"),
            ["data", "attributes", "profile", "data", "attributes"],
            "profile",
        ),
    ]


@pytest.mark.parametrize(("method", "path", "body", "where", "resource"), _undeclared_cases())
def test_undeclared_attribute_is_refused_on_every_endpoint_family(
    klaviyo: Running, method: str, path: str, body: dict, where: list, resource: str
) -> None:
    bad = copy.deepcopy(body)
    node: Any = bad
    for part in where:
        node = node[part]
    node["last_name_x"] = "Smith"
    response = klaviyo.client.request(method, path, json=bad)
    pointer = "/" + "/".join(str(p) for p in [*where, "last_name_x"])
    error = assert_error(response, 400, code="invalid", pointer=pointer)
    assert error["detail"] == f"'last_name_x' is not a valid field for the resource '{resource}'."


def test_last_name_in_a_subscription_job_is_refused_like_klaviyo(klaviyo: Running) -> None:
    row = bodies.email_subscribed("a@example.com") | {"last_name": "Smith"}
    response = klaviyo.client.post("/api/profile-subscription-bulk-create-jobs", json=bodies.subscribe([row]))
    error = assert_error(response, 400, pointer="/data/attributes/profiles/data/0/attributes/last_name")
    assert error["detail"] == "'last_name' is not a valid field for the resource 'profile'."


def test_free_form_objects_stay_open(klaviyo: Running) -> None:
    body = bodies.event(properties={"anything": {"nested": [1, {"deep": True}]}})
    assert klaviyo.client.post("/api/events", json=body).status_code == 202
    item = bodies.catalog_item(custom_metadata={"any_key": 1})
    assert klaviyo.client.post("/api/catalog-items", json=item).status_code == 201


# --- the SDK models and the OpenAPI file agree on what the sandbox accepts ------------------------------

SPEC_CASES = [
    ("/api/events", "post", bodies.event(value=10.5, time="2024-05-01T00:00:00Z")),
    (
        "/api/event-bulk-create-jobs",
        "post",
        bodies.bulk_events([({"email": "a@example.com"}, [bodies.bulk_event()])]),
    ),
    (
        "/api/profile-import",
        "post",
        bodies.profile_import(email="a@example.com", first_name="A", properties={"x": 1}),
    ),
    ("/api/profile-bulk-import-jobs", "post", bodies.bulk_import([{"email": "a@example.com"}])),
    (
        "/api/profile-subscription-bulk-create-jobs",
        "post",
        bodies.subscribe([bodies.email_subscribed("a@x.com")]),
    ),
    (
        "/api/profile-subscription-bulk-delete-jobs",
        "post",
        bodies.unsubscribe([bodies.email_unsubscribed("a@x.com")]),
    ),
    ("/api/catalog-items", "post", bodies.catalog_item()),
    ("/api/catalog-variants", "post", bodies.catalog_variant()),
    ("/api/catalog-variants/{id}", "patch", bodies.variant_update(inventory_quantity=0)),
    (
        "/api/catalog-variant-bulk-update-jobs",
        "post",
        bodies.variant_bulk_update([("SKU-1", {"price": 2.0})]),
    ),
    ("/api/back-in-stock-subscriptions", "post", bodies.back_in_stock()),
    ("/api/data-privacy-deletion-jobs", "post", bodies.deletion("a@example.com")),
]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return klaviyo_openapi()  # vendor/klaviyo/openapi-stable.json.gz; a missing file is an error, not a skip


@pytest.mark.parametrize(("path", "method", "body"), SPEC_CASES)
def test_sample_bodies_satisfy_the_openapi_spec(spec: dict[str, Any], path: str, method: str, body: dict) -> None:
    schema_ref = spec["paths"][path][method]["requestBody"]["content"]["application/vnd.api+json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema_ref, "components": spec["components"]})
    validator.validate(body)  # the OpenAPI file accepts it ...
    operation = next(op for op in OPERATIONS if op.method == method.upper() and op.path == path)
    assert operation.model is not None
    validate_body(operation.model, body)  # ... and so do the SDK models the sandbox validates with


def test_a_sandbox_bug_answers_500_in_the_error_format(klaviyo: Running) -> None:
    klaviyo.sandbox.events = None  # type: ignore[assignment]  # reset() in the fixture restores it
    assert_error(klaviyo.client.post("/api/events", json=bodies.event()), 500)
    assert klaviyo.client.get("/api/profiles").status_code == 200


def test_request_bodies_are_read_as_the_standard_library_reads_them() -> None:
    """orjson reads the bodies (the sandbox shares the benchmarks' machine); what it refuses and the standard
    library reads is still read, and invalid JSON is still the standard library's error. The Blue Cherry
    sandbox reads its stored rows with the same function, as text."""
    from sandbox.exact_json import loads as _parse  # noqa: PLC0415

    body = json.dumps(bodies.event(properties={"Marke": "Größe", "Items": [1, 2.5, None, True]}))
    assert _parse(body.encode()) == json.loads(body)
    assert _parse(b'{"value": 123456789012345678901234567890}') == {"value": 123456789012345678901234567890}
    nan = _parse(b'{"value": NaN}')["value"]
    assert nan != nan
    with pytest.raises(json.JSONDecodeError):
        _parse(b"{not json")
    assert _parse('{"Größe": 123456789012345678901234567890}') == {"Größe": 123456789012345678901234567890}
