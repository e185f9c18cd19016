"""Styles -> Klaviyo catalog operations: item and variant upserts, and retirement of discontinued ones.

Grouping follows `mapping.catalog.item_grouping`: one item per style + colour (default: what a shopper sees
as one product) or per style; one variant per SKU. Every operation's ledger key is the Klaviyo object it
writes ('catalog-item:<external_id>', 'catalog-variant:<external_id>'), retirements included, so the
ledger holds the latest state per object and an older upsert can never resurrect a retired one.
`version` is the style's `last_mod`.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from config.lanes import Lane
from config.mapping import Mapping
from sync.catalog.records import RecordError, Sku, SkuKey, Style, parse_style
from sync.catalog.templates import MissingField, check_templates, render
from sync.misfits import Misfit
from sync.operations import Operation


@dataclass(frozen=True)
class CatalogProblem:
    """One record (or SKU) that did not become catalog operations, and why."""

    record: str
    reason: str
    misfits: tuple[Misfit, ...] = ()  # the mapping problems behind it (`sync.misfits`)


@dataclass
class CatalogPlan:
    operations: list[Operation] = field(default_factory=list)
    problems: list[CatalogProblem] = field(default_factory=list)
    # what the catalog knows of the styles read: each SKU's variant id, live or retired, by SKU key text, and the
    # style codes (stock's ids are checked against them: `sync.stock.variant_ids`)
    variant_ids: dict[str, str] = field(default_factory=dict)
    styles: list[str] = field(default_factory=list)


def item_key(external_id: str) -> str:
    return f"catalog-item:{external_id}"


def variant_key(external_id: str) -> str:
    return f"catalog-variant:{external_id}"


class CatalogTransform:
    """Renders the mapping's catalog templates for typed styles. Construction checks every template."""

    def __init__(self, mapping: Mapping, lane: Lane = "batch") -> None:
        check_templates(mapping.catalog)
        self.mapping = mapping
        self.catalog = mapping.catalog
        self.lane: Lane = lane

    # --- identity ----------------------------------------------------------------------------
    def item_context(self, style: Style, sku: Sku | None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "style": style.style,
            "style_name": style.name,
            "style_desc": style.description,
            "brand": style.brand,
            "category": style.category,
            "gender": style.gender,
            "division": style.division,
            "season": style.season,
            "raw": dict(style.raw),
        }
        if sku is not None and self.catalog.item_grouping == "style_color":
            context["color_code"] = sku.key.color
            context["color_name"] = sku.color_name
        return context

    def variant_context(self, style: Style, sku: Sku) -> dict[str, Any]:
        context = self.item_context(style, None)
        context.update(
            color_code=sku.key.color,
            color_name=sku.color_name,
            lbl_code=sku.key.label,
            dimension=sku.key.dimension,
            size_desc=sku.key.size,
            upc=sku.upc,
            ean=sku.ean,
            raw={**style.raw, **sku.raw},
        )
        context["sku"] = sku.upc or render("variant_external_id", self.catalog.variant_external_id, context)
        return context

    def variant_external_id(self, style: Style, sku: Sku) -> str:
        context = self.variant_context(style, sku)
        return render("variant_external_id", self.catalog.variant_external_id, context)

    def item_external_id(self, style: Style, sku: Sku | None) -> str:
        return render("item_external_id", self.catalog.item_external_id, self.item_context(style, sku))

    # --- operations --------------------------------------------------------------------------
    def operations(self, style: Style, ats: MappingABC[SkuKey, int] | None = None) -> CatalogPlan:
        """Operations for one style; `ats` gives each SKU's available-to-sell (absent = 0)."""
        plan = CatalogPlan()
        for skus in self._groups(style):
            try:
                self._item_operations(style, skus, ats or {}, plan)
            except MissingField as exc:
                plan.problems.append(CatalogProblem(f"style:{style.style}", str(exc)))
        return plan

    def _groups(self, style: Style) -> list[list[Sku]]:
        groups: dict[str, list[Sku]] = {}
        for sku in style.skus:
            group = sku.key.color if self.catalog.item_grouping == "style_color" else ""
            groups.setdefault(group, []).append(sku)
        return list(groups.values())

    def _item_operations(
        self, style: Style, skus: list[Sku], ats: MappingABC[SkuKey, int], plan: CatalogPlan
    ) -> None:
        item_id = self.item_external_id(style, skus[0])
        version = style.last_mod.isoformat() if style.last_mod else None
        record = f"style:{style.style}"
        live = [sku for sku in skus if not (style.discontinued or sku.discontinued)]
        variants: list[Operation] = []
        prices: list[Decimal] = []
        for sku in skus:
            context = self.variant_context(style, sku)
            external_id = render("variant_external_id", self.catalog.variant_external_id, context)
            plan.variant_ids[sku.key.text] = external_id
            if sku not in live:
                variants.append(self._retire(external_id, "variant", version, record))
                continue
            price = sku.price if sku.price is not None else style.price
            if price is None:
                plan.problems.append(
                    CatalogProblem(f"{record}:{sku.key.text}", "no price on the SKU or the style")
                )
                continue
            prices.append(price)
            variants.append(
                Operation(
                    kind="catalog_variant_upsert",
                    key=variant_key(external_id),
                    lane=self.lane,
                    version=version,
                    record=f"{record}:{sku.key.text}",
                    payload=self._variant_payload(context, external_id, item_id, sku, price, ats),
                )
            )
        if not live:
            plan.operations.append(self._retire(item_id, "item", version, record))
        elif prices:
            plan.operations.append(self._item_upsert(style, skus[0], item_id, min(prices), version, record))
        plan.operations.extend(variants)

    def _item_upsert(
        self, style: Style, first: Sku, item_id: str, price: Decimal, version: str | None, record: str
    ) -> Operation:
        context = self.item_context(style, first)
        title = render("title", self.catalog.title, context)
        payload: dict[str, Any] = {
            "external_id": item_id,
            "title": title,
            "description": render("description", self.catalog.description, context) or title,
            "url": render("url", self.catalog.url, context),
            "price": float(price),
            "published": True,
            "custom_metadata": _metadata(style),
        }
        image = render("image_url", self.catalog.image_url, context)
        if image:
            payload["image_full_url"] = image
        return Operation(
            kind="catalog_item_upsert", key=item_key(item_id), lane=self.lane, version=version,
            record=record, payload=payload,
        )

    def _variant_payload(
        self,
        context: dict[str, Any],
        external_id: str,
        item_id: str,
        sku: Sku,
        price: Decimal,
        ats: MappingABC[SkuKey, int],
    ) -> dict[str, Any]:
        title = render("variant_title", self.catalog.variant_title, context)
        payload: dict[str, Any] = {
            "external_id": external_id,
            "item_external_id": item_id,
            "title": title,
            "description": render("description", self.catalog.description, context) or title,
            "sku": context["sku"],
            "inventory_quantity": max(0, int(ats.get(sku.key, 0))),
            "inventory_policy": self.catalog.inventory_policy,
            "price": float(price),
            "url": render("url", self.catalog.url, context),
            "published": True,
        }
        image = render("image_url", self.catalog.image_url, context)
        if image:
            payload["image_full_url"] = image
        return payload

    def _retire(self, external_id: str, kind: str, version: str | None, record: str) -> Operation:
        key = item_key(external_id) if kind == "item" else variant_key(external_id)
        return Operation(
            kind="catalog_retire",
            key=key,
            lane=self.lane,
            version=version,
            record=record,
            payload={"external_id": external_id, "kind": kind, "action": self.catalog.discontinued},
        )


def _metadata(style: Style) -> dict[str, str]:
    # Only fields both the REST style resource and the CSV style master carry, so both paths agree.
    values = {"style": style.style, "brand": style.brand, "division": style.division, "season": style.season}
    return {name: value for name, value in values.items() if value}


def catalog_operations(
    raw_styles: Iterable[Any],
    mapping: Mapping,
    ats: MappingABC[SkuKey, int] | None = None,
    lane: Lane = "batch",
) -> CatalogPlan:
    """Parse raw style records and plan their catalog operations; bad records become problems.

    Raises `TemplateError` (a configuration error) before reading any record if a template is unusable.
    """
    transform = CatalogTransform(mapping, lane=lane)
    last_mod = mapping.resources.style.last_mod
    plan = CatalogPlan()
    for raw in raw_styles:
        try:
            style = parse_style(raw, mapping.fields.style, last_mod, mapping.date_formats("style"))
        except RecordError as exc:
            plan.problems.append(CatalogProblem(exc.record, exc.reason, exc.misfits))
            continue
        result = transform.operations(style, ats)
        plan.operations.extend(result.operations)
        plan.problems.extend(result.problems)
        plan.variant_ids.update(result.variant_ids)
        plan.styles.append(style.style)
    return plan
