"""Catalog items and variants of the `$custom` integration's `$default` catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.klaviyo.errors import ApiError, ErrorItem
from sandbox.klaviyo.timeutil import from_epoch, iso

ITEM_FIELDS = (
    "external_id", "title", "description", "price", "url", "image_full_url", "image_thumbnail_url", "images",
    "custom_metadata", "published",
)  # fmt: skip
VARIANT_FIELDS = (
    "external_id", "title", "description", "sku", "inventory_policy", "inventory_quantity", "price", "url",
    "image_full_url", "image_thumbnail_url", "images", "custom_metadata", "published",
)  # fmt: skip
DEFAULTS: dict[str, Any] = {"published": True, "images": [], "custom_metadata": {}, "inventory_policy": 0}


def catalog_id(attributes: dict[str, Any]) -> str:
    integration = attributes.get("integration_type") or "$custom"
    catalog = attributes.get("catalog_type") or "$default"
    return f"{integration}:::{catalog}:::{attributes['external_id']}"


@dataclass
class CatalogEntry:
    id: str
    kind: str  # catalog-item | catalog-variant
    attributes: dict[str, Any]
    created: datetime
    updated: datetime
    item_id: str | None = None  # variants only
    variant_ids: list[str] = field(default_factory=list)  # items only

    def attributes_json(self) -> dict[str, Any]:
        names = ITEM_FIELDS if self.kind == "catalog-item" else VARIANT_FIELDS
        result = {name: self.attributes.get(name, DEFAULTS.get(name)) for name in names}
        result["created"] = iso(self.created)
        result["updated"] = iso(self.updated)
        return result


class Catalog:
    def __init__(self) -> None:
        self.items: dict[str, CatalogEntry] = {}
        self.variants: dict[str, CatalogEntry] = {}

    def _table(self, kind: str) -> dict[str, CatalogEntry]:
        return self.items if kind == "catalog-item" else self.variants

    def create(self, kind: str, attributes: dict[str, Any], item_id: str | None, now: float) -> CatalogEntry:
        table = self._table(kind)
        entry_id = catalog_id(attributes)
        if entry_id in table:
            raise ApiError(
                [
                    ErrorItem(
                        409,
                        f"A {kind} with id '{entry_id}' already exists.",
                        "/data/attributes/external_id",
                        code="duplicate_catalog_item" if kind == "catalog-item" else "duplicate_catalog_variant",
                    )
                ]
            )
        if kind == "catalog-variant" and item_id not in self.items:
            raise ApiError(
                [
                    ErrorItem(
                        404,
                        f"The catalog item '{item_id}' does not exist.",
                        "/data/relationships/item/data/id",
                    )
                ]
            )
        stored = {k: v for k, v in attributes.items() if k not in ("integration_type", "catalog_type")}
        moment = from_epoch(now)
        entry = CatalogEntry(entry_id, kind, stored, moment, moment, item_id=item_id)
        table[entry_id] = entry
        if item_id is not None:
            self.items[item_id].variant_ids.append(entry_id)
        return entry

    def get(self, kind: str, entry_id: str) -> CatalogEntry:
        entry = self._table(kind).get(entry_id)
        if entry is None:
            raise ApiError([ErrorItem(404, f"A {kind} with id '{entry_id}' does not exist.", "/data/id")])
        return entry

    def update(self, kind: str, entry_id: str, attributes: dict[str, Any], now: float) -> CatalogEntry:
        entry = self.get(kind, entry_id)
        entry.attributes.update(attributes)
        entry.updated = from_epoch(now)
        return entry

    def state(self) -> dict[str, Any]:
        return {
            "items": {
                entry_id: entry.attributes_json() | {"variants": list(entry.variant_ids)}
                for entry_id, entry in self.items.items()
            },
            "variants": {
                entry_id: entry.attributes_json() | {"item": entry.item_id} for entry_id, entry in self.variants.items()
            },
        }

    def clear(self) -> None:
        self.items.clear()
        self.variants.clear()
