"""Catalog items and variants, bulk catalog jobs, back-in-stock subscriptions."""

from __future__ import annotations

from tests.support import klaviyo_bodies as bodies
from tests.support.openapi import klaviyo_openapi
from tests.unit.sandbox.klaviyo.conftest import Running, wait_for

ITEM = "$custom:::$default:::STYLE-1"
VARIANT = "$custom:::$default:::SKU-1"


def make_variant(klaviyo: Running) -> None:
    assert klaviyo.client.post("/api/catalog-items", json=bodies.catalog_item()).status_code == 201
    assert klaviyo.client.post("/api/catalog-variants", json=bodies.catalog_variant()).status_code == 201


def test_catalog_ids_create_conflict_get_and_patch(klaviyo: Running) -> None:
    created = klaviyo.client.post("/api/catalog-items", json=bodies.catalog_item())
    assert created.status_code == 201 and created.json()["data"]["id"] == ITEM
    again = klaviyo.client.post("/api/catalog-items", json=bodies.catalog_item())
    assert again.status_code == 409 and again.json()["errors"][0]["source"]["pointer"]
    variant = klaviyo.client.post("/api/catalog-variants", json=bodies.catalog_variant())
    assert variant.status_code == 201 and variant.json()["data"]["id"] == VARIANT
    assert klaviyo.client.post("/api/catalog-variants", json=bodies.catalog_variant()).status_code == 409
    patched = klaviyo.client.patch(f"/api/catalog-variants/{VARIANT}", json=bodies.variant_update(inventory_quantity=0))
    assert patched.status_code == 200 and patched.json()["data"]["attributes"]["inventory_quantity"] == 0
    fetched = klaviyo.client.get(f"/api/catalog-variants/{VARIANT}").json()["data"]["attributes"]
    assert fetched["inventory_quantity"] == 0 and fetched["sku"] == "SKU-1"
    item = klaviyo.client.patch(f"/api/catalog-items/{ITEM}", json=bodies.item_update(title="Long coat"))
    assert item.json()["data"]["attributes"]["title"] == "Long coat"
    assert klaviyo.client.get(f"/api/catalog-items/{ITEM}").json()["data"]["attributes"]["title"] == "Long coat"
    state = klaviyo.client.get("/_sandbox/state").json()["catalog"]
    assert state["variants"][VARIANT]["inventory_quantity"] == 0 and state["items"][ITEM]["variants"] == [VARIANT]


def test_catalog_not_found_and_id_mismatch(klaviyo: Running) -> None:
    assert klaviyo.client.get("/api/catalog-variants/$custom:::$default:::NONE").status_code == 404
    assert klaviyo.client.post("/api/catalog-variants", json=bodies.catalog_variant(item="NONE")).status_code == 404
    make_variant(klaviyo)
    mismatch = klaviyo.client.patch(f"/api/catalog-variants/{VARIANT}", json=bodies.variant_update("OTHER", price=1))
    assert mismatch.status_code == 409


def test_variant_bulk_update_job_with_errors(klaviyo: Running) -> None:
    make_variant(klaviyo)
    body = bodies.variant_bulk_update([("SKU-1", {"inventory_quantity": 9}), ("MISSING", {"inventory_quantity": 1})])
    response = klaviyo.client.post("/api/catalog-variant-bulk-update-jobs", json=body)
    assert response.status_code == 202
    job = response.json()["data"]
    assert job["attributes"]["status"] == "queued" and job["attributes"]["total_count"] == 2
    path = f"/api/catalog-variant-bulk-update-jobs/{job['id']}"
    wait_for(lambda: klaviyo.client.get(path).json()["data"]["attributes"]["status"] == "complete")
    final = klaviyo.client.get(path).json()["data"]["attributes"]
    assert (final["completed_count"], final["failed_count"]) == (1, 1)
    assert final["errors"][0]["source"]["pointer"] == "/data/attributes/variants/data/1"
    assert (
        klaviyo.client.get(f"/api/catalog-variants/{VARIANT}").json()["data"]["attributes"]["inventory_quantity"] == 9
    )


def test_item_and_variant_bulk_create_jobs(klaviyo: Running) -> None:
    items = bodies.item_bulk_create([bodies.catalog_item("A"), bodies.catalog_item("B")])
    job = klaviyo.client.post("/api/catalog-item-bulk-create-jobs", json=items).json()["data"]
    klaviyo.client.post("/_sandbox/complete-jobs")
    status = klaviyo.client.get(f"/api/catalog-item-bulk-create-jobs/{job['id']}").json()["data"]["attributes"]
    assert status["completed_count"] == 2
    variants = bodies.variant_bulk_create([bodies.catalog_variant("A-1", item="A")])
    job = klaviyo.client.post("/api/catalog-variant-bulk-create-jobs", json=variants).json()["data"]
    klaviyo.client.post("/_sandbox/complete-jobs")
    assert (
        klaviyo.client.get(f"/api/catalog-variant-bulk-create-jobs/{job['id']}").json()["data"]["attributes"][
            "completed_count"
        ]
        == 1
    )
    update = bodies.item_bulk_update([("A", {"title": "Renamed"})])
    job = klaviyo.client.post("/api/catalog-item-bulk-update-jobs", json=update).json()["data"]
    klaviyo.client.post("/_sandbox/complete-jobs")
    assert klaviyo.client.get(f"/api/catalog-item-bulk-update-jobs/{job['id']}").status_code == 200
    catalog = klaviyo.client.get("/_sandbox/state").json()["catalog"]
    assert catalog["items"]["$custom:::$default:::A"]["title"] == "Renamed"
    assert "$custom:::$default:::A-1" in catalog["variants"]


def test_a_create_job_row_of_an_existing_object_is_reported_as_klaviyo_documents_it(klaviyo: Running) -> None:
    """OpenAPI `APIJobErrorPayload`: id, code, title, detail, source.pointer - no HTTP status, no meta. The
    code and detail are what a client can tell "already exists" by (Klaviyo documents no code for it)."""
    schemas = klaviyo_openapi()["components"]["schemas"]
    documented = set(schemas["APIJobErrorPayload"]["properties"])
    make_variant(klaviyo)
    jobs = [
        ("catalog-item-bulk-create-jobs", bodies.item_bulk_create([bodies.catalog_item("STYLE-1"),
                                                                    bodies.catalog_item("STYLE-2")]), ITEM),
        ("catalog-variant-bulk-create-jobs", bodies.variant_bulk_create([bodies.catalog_variant("SKU-1"),
                                                                          bodies.catalog_variant("SKU-2")]), VARIANT),
    ]
    for path, body, existing in jobs:
        job = klaviyo.client.post(f"/api/{path}", json=body).json()["data"]
        klaviyo.client.post("/_sandbox/complete-jobs")
        attributes = klaviyo.client.get(f"/api/{path}/{job['id']}").json()["data"]["attributes"]
        assert (attributes["completed_count"], attributes["failed_count"]) == (1, 1)
        (error,) = attributes["errors"]
        assert set(error) == documented and set(error["source"]) <= set(schemas["ErrorSource"]["properties"])
        assert "status" not in error and error["source"]["pointer"].endswith("/data/0")
        assert error["code"].startswith("duplicate_catalog_") and f"'{existing}' already exists" in error["detail"]
        state_job = klaviyo.client.get("/_sandbox/state").json()["jobs"][job["id"]]
        assert state_job["errors"] == attributes["errors"]  # the control view says no more than the API


def test_catalog_bulk_limit_100(klaviyo: Running) -> None:
    rows = [(f"S{i}", {"inventory_quantity": 1}) for i in range(101)]
    response = klaviyo.client.post("/api/catalog-variant-bulk-update-jobs", json=bodies.variant_bulk_update(rows))
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/variants/data"
    ok = klaviyo.client.post("/api/catalog-variant-bulk-update-jobs", json=bodies.variant_bulk_update(rows[:100]))
    assert ok.status_code == 202


def test_back_in_stock_subscription_is_stored(klaviyo: Running) -> None:
    make_variant(klaviyo)
    assert klaviyo.client.post("/api/back-in-stock-subscriptions", json=bodies.back_in_stock()).status_code == 202
    (subscription,) = klaviyo.client.get("/_sandbox/state").json()["back_in_stock_subscriptions"]
    assert subscription["variant_id"] == VARIANT and subscription["email"] == "ann@example.com"
    missing = klaviyo.client.post("/api/back-in-stock-subscriptions", json=bodies.back_in_stock(variant="NONE"))
    assert missing.status_code == 404
