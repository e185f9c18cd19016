"""Request bodies as Klaviyo documents them, for the sandbox tests."""

from __future__ import annotations

from typing import Any

VARIANT_PREFIX = "$custom:::$default:::"


def profile_ref(**attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "profile", "attributes": attributes}}


def event(metric: str = "Placed Order", unique_id: str | None = "order-1", **extra: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "properties": {"OrderId": "1"},
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        "profile": profile_ref(email="ann@example.com"),
        **extra,
    }
    if unique_id is not None:
        attributes["unique_id"] = unique_id
    return {"data": {"type": "event", "attributes": attributes}}


def bulk_events(groups: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> dict[str, Any]:
    """groups: (profile attributes, [event attributes without profile])."""
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {
                "events-bulk-create": {
                    "data": [
                        {
                            "type": "event-bulk-create",
                            "attributes": {
                                "profile": profile_ref(**profile),
                                "events": {"data": [{"type": "event", "attributes": e} for e in events]},
                            },
                        }
                        for profile, events in groups
                    ]
                }
            },
        }
    }


def bulk_event(metric: str = "Placed Order", unique_id: str = "u1", **extra: Any) -> dict[str, Any]:
    return {
        "properties": {"OrderId": unique_id},
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
        "unique_id": unique_id,
        **extra,
    }


def profile_import(profile_id: str | None = None, **attributes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "profile", "attributes": attributes}
    if profile_id:
        data["id"] = profile_id
    return {"data": data}


def bulk_import(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": row} for row in rows]}},
        }
    }


def subscribe(rows: list[dict[str, Any]], historical: bool | None = None, list_id: str | None = None) -> dict:
    attributes: dict[str, Any] = {"profiles": {"data": [{"type": "profile", "attributes": row} for row in rows]}}
    if historical is not None:
        attributes["historical_import"] = historical
    data: dict[str, Any] = {"type": "profile-subscription-bulk-create-job", "attributes": attributes}
    if list_id:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def email_subscribed(email: str, **marketing: Any) -> dict[str, Any]:
    return {"email": email, "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED", **marketing}}}}


def unsubscribe(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": {
            "type": "profile-subscription-bulk-delete-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": row} for row in rows]}},
        }
    }


def email_unsubscribed(email: str) -> dict[str, Any]:
    return {"email": email, "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}


def catalog_item(external_id: str = "STYLE-1", **extra: Any) -> dict[str, Any]:
    attributes = {
        "external_id": external_id,
        "title": "Coat",
        "description": "A wool coat",
        "url": f"https://shop.example.com/{external_id}",
        **extra,
    }
    return {"data": {"type": "catalog-item", "attributes": attributes}}


def catalog_variant(external_id: str = "SKU-1", item: str = "STYLE-1", **extra: Any) -> dict[str, Any]:
    attributes = {
        "external_id": external_id,
        "title": "Coat / M",
        "description": "A wool coat, size M",
        "sku": external_id,
        "inventory_quantity": 3,
        "price": 199.0,
        "url": f"https://shop.example.com/{item}?v={external_id}",
        **extra,
    }
    return {
        "data": {
            "type": "catalog-variant",
            "attributes": attributes,
            "relationships": {"item": {"data": {"type": "catalog-item", "id": VARIANT_PREFIX + item}}},
        }
    }


def variant_update(external_id: str = "SKU-1", **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "catalog-variant", "id": VARIANT_PREFIX + external_id, "attributes": attributes}}


def item_update(external_id: str = "STYLE-1", **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "catalog-item", "id": VARIANT_PREFIX + external_id, "attributes": attributes}}


def variant_bulk_update(rows: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "data": {
            "type": "catalog-variant-bulk-update-job",
            "attributes": {
                "variants": {
                    "data": [
                        {"type": "catalog-variant", "id": VARIANT_PREFIX + ext, "attributes": attrs}
                        for ext, attrs in rows
                    ]
                }
            },
        }
    }


def variant_bulk_create(variants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": {
            "type": "catalog-variant-bulk-create-job",
            "attributes": {"variants": {"data": [v["data"] for v in variants]}},
        }
    }


def item_bulk_create(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": {
            "type": "catalog-item-bulk-create-job",
            "attributes": {"items": {"data": [i["data"] for i in items]}},
        }
    }


def item_bulk_update(rows: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "data": {
            "type": "catalog-item-bulk-update-job",
            "attributes": {
                "items": {
                    "data": [
                        {"type": "catalog-item", "id": VARIANT_PREFIX + ext, "attributes": attrs} for ext, attrs in rows
                    ]
                }
            },
        }
    }


def back_in_stock(email: str = "ann@example.com", variant: str = "SKU-1") -> dict[str, Any]:
    return {
        "data": {
            "type": "back-in-stock-subscription",
            "attributes": {"channels": ["EMAIL"], "profile": profile_ref(email=email)},
            "relationships": {"variant": {"data": {"type": "catalog-variant", "id": VARIANT_PREFIX + variant}}},
        }
    }


def deletion(email: str) -> dict[str, Any]:
    return {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": profile_ref(email=email)}}}
