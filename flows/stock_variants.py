"""Stock's variant ids against the catalog's (issue 16, loud failures): a wrong `catalog.variant_external_id`
is ONE `variant_id_mismatch` exception with examples, never a silent wait for variants that never exist nor a
warning per SKU.

Every batch of SKU figures a worker computes is looked up in what the catalog read (`StockState.catalog_view`,
one round trip) and judged (`sync.stock.variant_ids.Sighting`): a SKU the catalog holds under another id raises
the exception at once; SKUs of read styles that the catalog does not hold are counted per configuration, and
`variant_check_skus` of them with no SKU ever matching raise it too (a few new SKUs ahead of their style's next
read do not). Stock for a SKU whose style the catalog has not read keeps its per-SKU warning (it clears itself
with the next style poll).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from config.mapping import Mapping
from delivery.runtime import Runtime
from state.stock import StockState
from sync.catalog.records import SkuKey
from sync.misfits import MAX_EXAMPLES
from sync.stock.variant_ids import (
    EXCEPTION,
    RECORD_KEY,
    Sighting,
    Verdict,
    checked_configuration,
    decode_example,
    encode_example,
    mismatch_reason,
)

# Configurations a matching SKU proved, in this process: their unmatched SKUs are new ones, not counted.
PROVEN: set[str] = set()
NOT_READ = "stock for a SKU whose style was not read yet (no catalog variant)"
READ_WITHOUT = "stock for a SKU the catalog does not hold: its style was read without it (a new SKU comes with " \
    "the style's next read)"


def check_variant_ids(figures: Sequence[tuple[SkuKey, str | None]], mapping: Mapping, state: StockState,
                      rt: Runtime) -> list[Sighting]:
    """Judge the variant ids (None: stock found none) of these SKUs' figures against the catalog; raise what is
    wrong. Returns the sightings (for tests and callers that want the verdicts)."""
    if not figures:
        return []
    catalog, styles = state.catalog_view([sku for sku, _ in figures])
    sightings = [Sighting(sku, stock_id, catalog_id, known)
                 for (sku, stock_id), catalog_id, known in zip(figures, catalog, styles, strict=True)]
    by: dict[Verdict, list[Sighting]] = defaultdict(list)
    for sighting in sightings:
        by[sighting.verdict].append(sighting)
    template = mapping.catalog.variant_external_id
    if by["mismatch"]:
        _record(rt, template, [s.example() for s in by["mismatch"]], len(by["mismatch"]))
    for sighting in by["unknown"]:
        if sighting.stock_id is None:
            rt.exceptions.record("catalog_error", f"sku:{sighting.sku.text}", NOT_READ, severity="warning")
    unmatched = by["unmatched"]
    if not unmatched and (not by["match"] or checked_configuration(mapping) in PROVEN):
        return sightings
    digest = checked_configuration(mapping)
    examples: list[str] = []
    if digest not in PROVEN:
        proven, examples = state.variant_check(digest, bool(by["match"]), [encode_example(s) for s in unmatched],
                                               rt.settings.variant_check_skus)
        if proven:
            PROVEN.add(digest)
    if examples:  # no SKU ever matched, and enough did not: the configuration is wrong
        _record(rt, template, [decode_example(e) for e in sorted(examples)], len(examples))
        return sightings
    for sighting in unmatched:
        if sighting.stock_id is None:
            rt.exceptions.record("catalog_error", f"sku:{sighting.sku.text}", READ_WITHOUT, severity="warning")
    return sightings


def _record(rt: Runtime, template: str, examples: list[dict[str, str]], count: int) -> None:
    rt.exceptions.record(EXCEPTION, RECORD_KEY, mismatch_reason(template, examples, count),
                         details={"template": template, "examples": examples[:MAX_EXAMPLES]})
