"""Do stock's variant ids name the catalog's variants? A wrong `catalog.variant_external_id` fails silently
otherwise: stock is computed under ids no variant has, and each figure waits for a variant that never exists.

The catalog renders each SKU's variant id from the style record; stock renders it from the inventory row
(a template of SKU-key fields only: `sync.stock.plan.key_only_external_ids`) or looks it up by SKU key among
the variants the catalog planned. Inputs that differ between the two records (a barcode held as EAN-13 in the
style and as UPC-A in the inventory, a size code against a size name, padding) give ids or SKU keys the
catalog does not have. One SKU's figure against the catalog (`Sighting`) is:
- ``match``: the catalog planned this SKU key under the very id stock uses;
- ``mismatch``: the catalog planned this SKU key under another id (proof of a wrong template: raised at once);
- ``unmatched``: the catalog read the SKU's style but has no variant for this SKU key (a new SKU ahead of its
  style's next read, or keys that never match: counted, and declared wrong only after `variant_check_skus`
  such SKUs with no match at all under the same template and field mappings);
- ``unknown``: the catalog has not read the style yet (nothing to compare with).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from config.mapping import Mapping
from sync.catalog.records import SkuKey

Verdict = Literal["match", "mismatch", "unmatched", "unknown"]
EXCEPTION = "variant_id_mismatch"
RECORD_KEY = "catalog.variant_external_id"  # one row for the whole configuration


@dataclass(frozen=True)
class Sighting:
    """One SKU's figure: the id stock uses (None: it found none) and the catalog's id for the SKU key."""

    sku: SkuKey
    stock_id: str | None
    catalog_id: str | None
    style_known: bool

    @property
    def verdict(self) -> Verdict:
        if self.catalog_id is not None:
            return "match" if self.stock_id == self.catalog_id else "mismatch"
        return "unmatched" if self.style_known else "unknown"

    def example(self) -> dict[str, str]:
        return {"sku": self.sku.text, "stock_id": self.stock_id or "", "catalog_id": self.catalog_id or ""}


def checked_configuration(mapping: Mapping) -> str:
    """A digest of what decides both sides' ids (the template, the inventory and style field mappings): a
    match proves this configuration, and a change of it starts the count again."""
    parts = [mapping.catalog.variant_external_id, mapping.fields.inventory.model_dump_json(),
             mapping.fields.style.model_dump_json()]
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def mismatch_reason(template: str, examples: list[dict[str, str]], unmatched: int) -> str:
    """What an operator reads: the template, one example said in full, what happens, what to check."""
    first = examples[0] if examples else {}
    if first.get("catalog_id"):
        said = (f"SKU {first['sku']} is variant {first['catalog_id']!r} in the catalog but stock computes it as "
                f"{first['stock_id']!r}")
    else:
        said = (f"{unmatched} stock SKUs of styles the catalog has read match none of its variants (e.g. SKU "
                f"{first.get('sku', '?')}" + (f", stock id {first['stock_id']!r}" if first.get("stock_id") else "")
                + ")")
    return (f"stock's variant ids match no catalog variant: {said} (catalog.variant_external_id = {template!r}); "
            "its stock is never sent. Make the template and the inventory and style field mappings (fields.inventory, "
            "fields.style.sku_*) give both records the same values, then re-read the inventory")


def encode_example(sighting: Sighting) -> str:
    return json.dumps(sighting.example(), sort_keys=True)


def decode_example(text: str) -> dict[str, str]:
    value = json.loads(text)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
