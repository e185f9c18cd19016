"""The catalog's str.format templates (`mapping.catalog`): checked once, rendered per record.

A template may name the canonical fields below (named after the default Blue Cherry fields, but filled
through the mapping, so they survive a tenant renaming its fields), and any raw field of the style or
SKU record as `{raw[field_name]}` (the SKU's raw fields win over the style's). A template naming anything
else is a configuration error raised at start, before any record is read. A `{raw[...]}` field missing
from one record is that record's problem, not the configuration's.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

from config.mapping import Catalog, MappingError

STYLE_FIELDS = frozenset(
    {"style", "style_name", "style_desc", "brand", "category", "gender", "division", "season", "raw"}
)
COLOR_FIELDS = frozenset({"color_code", "color_name"})
SKU_FIELDS = frozenset({"lbl_code", "dimension", "size_desc", "upc", "ean", "sku"})

ITEM_TEMPLATES = ("item_external_id", "title", "description", "url", "image_url")
VARIANT_TEMPLATES = ("variant_external_id", "variant_title", "description", "url", "image_url")


class TemplateError(MappingError):
    """A catalog template that cannot be rendered with the fields the mapping provides."""


class MissingField(ValueError):
    """A `{raw[...]}` field one record lacks: that record's problem."""


def item_fields(item_grouping: str) -> frozenset[str]:
    return STYLE_FIELDS | COLOR_FIELDS if item_grouping == "style_color" else STYLE_FIELDS


def check_templates(catalog: Catalog) -> None:
    """Raise `TemplateError` for a template that is malformed or names a field it can never have."""
    variant_known = STYLE_FIELDS | COLOR_FIELDS | SKU_FIELDS
    for name in ITEM_TEMPLATES:
        _check(name, getattr(catalog, name), item_fields(catalog.item_grouping), catalog.item_grouping)
    for name in VARIANT_TEMPLATES:
        _check(name, getattr(catalog, name), variant_known, catalog.item_grouping)


def _check(name: str, template: str, known: frozenset[str], grouping: str) -> None:
    for field_name in field_names(name, template):
        root = field_name.split(".", 1)[0].split("[", 1)[0]
        if root not in known:
            where = "an item" if name in ITEM_TEMPLATES and root in COLOR_FIELDS | SKU_FIELDS else "a record"
            raise TemplateError(
                f"mapping key 'catalog.{name}' = {template!r} names {{{field_name}}}, which {where} "
                f"does not have with item_grouping={grouping!r}; known fields: {', '.join(sorted(known))} "
                "(raw record fields as {raw[field_name]})"
            )


def field_names(name: str, template: str) -> Iterable[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(
            f"mapping key 'catalog.{name}' = {template!r}: not a valid template: {exc}"
        ) from None
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if field_name == "" or field_name[0].isdigit():
            raise TemplateError(
                f"mapping key 'catalog.{name}' = {template!r}: positional fields are not allowed; "
                "name a field"
            )
        yield field_name


def render(name: str, template: str, context: dict[str, Any]) -> str:
    """Render one checked template; a `{raw[...]}` field the record lacks raises `MissingField`."""
    try:
        return template.format_map(context)
    except KeyError as exc:
        raise MissingField(f"template 'catalog.{name}' = {template!r} needs raw field {exc}") from None
    except (ValueError, AttributeError, IndexError, TypeError) as exc:
        raise MissingField(f"template 'catalog.{name}' = {template!r} cannot render: {exc}") from None
