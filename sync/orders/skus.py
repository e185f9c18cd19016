"""Product identity and details of a document line: SKU and item id from the mapping's catalog
templates, names, URLs, categories and brand from an optional catalog lookup."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from config.mapping import Mapping
from sync.orders.records import DocumentLine

CENT = Decimal("0.01")


def money(number: Decimal) -> float:
    return float(number.quantize(CENT))


class ProductDetails(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = ""
    url: str = ""
    image_url: str = ""
    categories: tuple[str, ...] = ()
    brand: str = ""


class ProductInfo(Protocol):
    """What the catalog knows about a line's product; None = unknown (the line's own data is used)."""

    def product(self, line: DocumentLine) -> ProductDetails | None: ...


class StyleCatalog:
    """The simplest ProductInfo: details per style code."""

    def __init__(self, by_style: dict[str, ProductDetails]) -> None:
        self.by_style = by_style

    def product(self, line: DocumentLine) -> ProductDetails | None:
        return self.by_style.get(line.style)


class _BlankMissing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _fill(template: str, line: DocumentLine) -> str:
    """Format a catalog template with the line's fields; placeholders the line lacks become ''."""
    # the line's fields as they are (a line is flat: `model_dump()` gives the same, at several times the cost, and
    # this runs four times for every item of every event)
    values = _BlankMissing(line.__dict__)
    values.setdefault("style_name", line.description)
    return template.format_map(values)


def sku_of(line: DocumentLine, mapping: Mapping) -> str:
    return _fill(mapping.catalog.variant_external_id, line)


def item_properties(line: DocumentLine, quantity: int, mapping: Mapping,
                    catalog: ProductInfo | None) -> dict[str, Any]:
    """One entry of Klaviyo's recommended `Items[]`."""
    details = (catalog.product(line) if catalog else None) or ProductDetails()
    return {
        "ProductID": _fill(mapping.catalog.item_external_id, line),
        "SKU": sku_of(line, mapping),
        "ProductName": details.name or line.description or line.style,
        "Quantity": quantity,
        "ItemPrice": float(line.price),
        "RowTotal": money(line.price * quantity),
        "ProductURL": details.url or _fill(mapping.catalog.url, line),
        "ImageURL": details.image_url or _fill(mapping.catalog.image_url, line),
        "Categories": list(details.categories),
        "Brand": details.brand,
    }


def item_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    """ItemNames, Categories and Brands across items, first-seen order, no repeats."""

    def unique(values: Any) -> list[str]:
        return list(dict.fromkeys(v for v in values if v))

    return {
        "ItemNames": unique(item["ProductName"] for item in items),
        "Categories": unique(c for item in items for c in item["Categories"]),
        "Brands": unique(item["Brand"] for item in items),
    }
