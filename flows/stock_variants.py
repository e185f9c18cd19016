"""Stock's variant ids against the catalog's (issue 16, loud failures): a wrong `catalog.variant_external_id`
is ONE `variant_id_mismatch` exception with examples, never a silent wait for variants that never exist nor a
warning per SKU.

Every batch of SKU figures a worker computes is looked up in what the catalog read (`StockState.catalog_view`,
one round trip) and judged (`sync.stock.variant_ids.Sighting`): a SKU the catalog holds under another id raises
the exception at once; SKUs of read styles that the catalog does not hold are counted per configuration, and
`variant_check_skus` of them with no SKU ever matching raise it too (a few new SKUs ahead of their style's next
read do not). Stock for a SKU whose style the catalog has not read keeps its per-SKU warning (it clears itself
with the next style poll), and the SKU is judged once the catalog reads its style (`recheck_unjudged`, after
every style batch): a first load's stock often comes before its styles.
"""

from __future__ import annotations

import json
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
UNJUDGED_CAP = 200  # stock SKUs kept until their style is read (a first load's stock before its styles)
NOT_READ = "stock for a SKU whose style was not read yet (no catalog variant)"
READ_WITHOUT = "stock for a SKU the catalog does not hold: its style was read without it (a new SKU comes with " \
    "the style's next read)"


def check_variant_ids(figures: Sequence[tuple[SkuKey, str | None]], mapping: Mapping, state: StockState,
                      rt: Runtime, *, recheck: bool = False) -> list[Sighting]:
    """Judge the variant ids (None: stock found none) of these SKUs' figures against the catalog; raise what is
    wrong. SKUs of styles the catalog has not read are kept to be judged once it has (`recheck_unjudged`: stock
    read before the styles on a first load). Returns the sightings."""
    if not figures:
        return []
    catalog, styles = state.catalog_view([sku for sku, _ in figures])
    sightings = [Sighting(sku, stock_id, catalog_id, known)
                 for (sku, stock_id), catalog_id, known in zip(figures, catalog, styles, strict=True)]
    by: dict[Verdict, list[Sighting]] = defaultdict(list)
    for sighting in sightings:
        by[sighting.verdict].append(sighting)
    template, digest = mapping.catalog.variant_external_id, checked_configuration(mapping)
    if by["mismatch"]:
        _record(rt, template, [s.example() for s in by["mismatch"]], len(by["mismatch"]))
    if by["unknown"] and not recheck:
        state.hold_unjudged(digest, [_unjudged(s) for s in by["unknown"]], UNJUDGED_CAP)
        _warn(rt, by["unknown"], NOT_READ)
    examples = _unmatched_past_the_bound(by, digest, state, rt)
    if examples:  # no SKU ever matched, and enough did not: the configuration is wrong
        _record(rt, template, [decode_example(e) for e in sorted(examples)], len(examples))
    else:
        _warn(rt, by["unmatched"], READ_WITHOUT)
    return sightings


def _unmatched_past_the_bound(by: dict[Verdict, list[Sighting]], digest: str, state: StockState,
                              rt: Runtime) -> list[str]:
    """Count the unmatched SKUs of a configuration no SKU matched yet; their examples once there are enough."""
    if digest in PROVEN or not (by["unmatched"] or by["match"]):
        return []
    proven, examples = state.variant_check(digest, bool(by["match"]), [encode_example(s) for s in by["unmatched"]],
                                           rt.settings.variant_check_skus)
    if proven:
        PROVEN.add(digest)
    return examples


def _warn(rt: Runtime, sightings: list[Sighting], reason: str) -> None:
    """The per-SKU warning of stock that found no variant id at all (a key-only template always finds one)."""
    for sighting in sightings:
        if sighting.stock_id is None:
            rt.exceptions.record("catalog_error", f"sku:{sighting.sku.text}", reason, severity="warning")


def recheck_unjudged(mapping: Mapping, state: StockState, rt: Runtime) -> list[Sighting]:
    """The catalog has read styles: judge the stock SKUs kept because their style was not read yet (those still
    unread stay kept). Called after every style batch; nothing to do in the steady state."""
    digest = checked_configuration(mapping)
    held = state.unjudged(digest)
    if not held:
        return []
    figures = [(SkuKey(*entry["key"]), entry["stock_id"]) for entry in map(json.loads, held)]
    sightings = check_variant_ids(figures, mapping, state, rt, recheck=True)
    state.judged(digest, [entry for entry, s in zip(held, sightings, strict=True) if s.verdict != "unknown"])
    return sightings


def _unjudged(sighting: Sighting) -> str:
    return json.dumps({"key": list(sighting.sku), "stock_id": sighting.stock_id}, sort_keys=True)


def _record(rt: Runtime, template: str, examples: list[dict[str, str]], count: int) -> None:
    rt.exceptions.record(EXCEPTION, RECORD_KEY, mismatch_reason(template, examples, count),
                         details={"template": template, "examples": examples[:MAX_EXAMPLES]})
