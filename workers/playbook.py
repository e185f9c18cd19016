"""`bcsync playbook`: the operational playbook (docs/playbook.md), generated from the mapping, the settings and the
code's registries, so it says what this fleet does and never drifts from it.

- where each data object lives: `workers.playbook_objects` with the mapping's field names and metric names;
- lanes and how fast: `config.lanes`, the Klaviyo endpoints' tiers (`connectors.klaviyo.endpoints`) and the
  fleet's budget per lane (`connectors.klaviyo.limiter.lane_caps` with the rate settings), poll intervals;
- every exception type with its owner (the mapping's `[owners]`), meaning and action: `config.exception_types`;
- the daily and weekly checks, the status lines, the erasure: `workers.playbook_procedures`;
- the Celery task names Flower shows: `config.task_names`.

The committed docs/playbook.md is the defaults' (`bcsync playbook --defaults`); a test fails when it differs from
a fresh generation. A tenant's own: `bcsync playbook --out playbook.md` (its mapping file and settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from config import task_names
from config.exception_types import EXCEPTION_TYPES, OWNERS
from config.lanes import LANE_CARRIES, LANES
from config.mapping import Mapping, get_mapping
from config.settings import Settings, get_settings
from connectors.klaviyo.endpoints import ENDPOINTS
from connectors.klaviyo.limiter import lane_caps
from sync.changes import RESOURCE_LANES
from workers import playbook_procedures as procedures
from workers.playbook_objects import DATA_OBJECTS, DataObject

DEFAULT_OUT = Path("docs/playbook.md")
# Keys of fields.<resource> that hold values (codes, flags), not Blue Cherry field names
VALUE_KEYS = frozenset({"normalise", "yes_values", "status_values", "discontinued_values", "shipped_value",
                        "shipped_when"})
NOT_SENT = "read by the fleet (not sent)"


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows), ""]


def _names(mapping: Mapping) -> dict[str, str]:
    return {"p": mapping.profiles.aggregate_prefix, **mapping.metrics.model_dump()}


def _bc_field(value: Any) -> str:
    if isinstance(value, BaseModel):  # a child collection (lines) or an address block
        rows = getattr(value, "rows", "")
        layout = getattr(value, "layout", "rows")
        return "flat fields on the record" if layout == "flat" else f"child rows `{rows}`"
    if isinstance(value, tuple):
        return ", ".join(f"`{v}`" for v in value) or "(none)"
    if value in ("", None):
        return "(absent: the mapping declares the tenant has none)"
    return f"`{value}`"


def _object_section(obj: DataObject, mapping: Mapping) -> list[str]:
    names = _names(mapping)
    resource = getattr(mapping.resources, obj.resource)
    fields = getattr(mapping.fields, obj.resource)
    lines = [f"### {obj.resource} (`{resource.path}`)", "",
             f"Becomes {obj.klaviyo.format(**names)}. Lane: {obj.lane}. Polled every {_num(resource.poll_seconds)} "
             f"s ({resource.page_size} records a page), key `{resource.key}`, changes found by `{resource.last_mod}`.",
             ""]
    rows = [(f"`fields.{obj.resource}.{key}`", _bc_field(getattr(fields, key)),
             obj.fields.get(key, NOT_SENT).format(**names))
            for key in type(fields).model_fields if key not in VALUE_KEYS]
    return lines + _table(("mapping key", "Blue Cherry field", "in Klaviyo"), rows)


def _objects(mapping: Mapping) -> list[str]:
    names = _names(mapping)
    summary = []
    for obj in DATA_OBJECTS:
        res = getattr(mapping.resources, obj.resource)
        summary.append((f"{obj.resource} (`{res.path}`)", f"{_num(res.poll_seconds)} s", obj.lane,
                        obj.klaviyo.format(**names)))
    out = ["## Where each data object lives", "",
           "Each Blue Cherry resource the poller reads, how often, on which lane, and what it becomes in Klaviyo. "
           "Field names are the mapping's (`BCSYNC_MAPPING_FILE`; `bcsync mapping check` proves them on the tenant).",
           "", *_table(("Blue Cherry resource (path)", "polled every", "lane", "in Klaviyo"), summary)]
    for obj in DATA_OBJECTS:
        out += _object_section(obj, mapping)
    return out


def _share_growth(s: Settings) -> str:
    top = getattr(s, "rate_share_max", None)  # the adaptive share's ceiling, where the limiter has one
    if top is None or top <= s.rate_share:
        return ""
    return (f", growing to {_num(100 * top)}% while Klaviyo answers without 429s (`BCSYNC_RATE_SHARE_MAX`; cut "
            "back after a 429 or when another integration uses the account)")


def _lanes(mapping: Mapping, s: Settings) -> list[str]:
    share = (s.rate_share, s.fast_reserve, s.batch_ceiling)
    lane_rows = [(f"`{lane}`", LANE_CARRIES[lane], f"`bcsync worker --lane {lane}` x {s.worker_concurrency}",
                  f"{_num(100 * pct)}% of the fleet's share") for lane, pct in
                 zip(LANES, (1.0, 1 - s.fast_reserve, (1 - s.fast_reserve) * s.batch_ceiling), strict=True)]
    endpoint_rows = []
    for key, e in ENDPOINTS.items():
        burst = max(1, int(e.tier.burst * s.rate_limit_scale))
        steady = max(1, int(e.tier.steady * s.rate_limit_scale))
        b, m = lane_caps(burst, *share), lane_caps(steady, *share)
        endpoint_rows.append((f"`{key}`", f"{burst}/s, {steady}/min", f"{b.total}/s, {m.total}/min",
                              f"{b.non_fast}/s, {m.non_fast}/min", f"{b.batch}/s, {m.batch}/min"))
    resource_lanes = ", ".join(f"{r}: {lane}" for r, lane in RESOURCE_LANES.items())
    timing = [
        ("stock figure of a SKU", f"sent once quiet for {_num(mapping.stock.debounce_seconds)} s "
         f"(`stock.debounce_seconds`)"),
        ("the daily profile batch", f"at {mapping.field_policy.daily_batch_hour}:00 tenant time "
         f"({mapping.tenant.timezone}; `field_policy.daily_batch_hour`)"),
        ("a failed delivery", f"retried up to {s.max_attempts} times, backing off {_num(s.backoff_base_seconds)} s "
         f"doubling to {_num(s.backoff_max_seconds)} s, then a dead letter"),
        ("work waiting for a customer's profile", f"at most {_num(s.profile_wait_seconds)} s, then `profile_missing`"),
        ("a consent job", f"confirmed on the profile within {_num(s.consent_confirm_seconds)} s, else sent again "
         "(`consent_unconfirmed`)"),
        ("a dead worker's messages", f"back on their lane within "
         f"{s.visibility_timeout_seconds + s.redelivery_check_seconds} s"),
        ("beat or a buffer silent", f"`beat_stale` / `buffer_stale` after {_num(s.stale_after_seconds)} s"),
        ("dead letters", f"kept {s.dead_letter_ttl_days} days, the owner warned {s.dead_letter_expiry_warning_days} "
         "days before (consent and privacy deletions: until purged)"),
        ("exceptions", f"kept {s.exception_ttl_days} days"),
    ]
    return ["## Lanes and how fast", "",
            f"Three lanes, each its own Celery queue, workers and dead letters. Change handlers by resource: "
            f"{resource_lanes} (customers and stock choose per change, above).", "",
            *_table(("lane", "carries", "workers (default concurrency)", "Klaviyo budget it may use"), lane_rows),
            f"The fleet is always allowed {_num(100 * s.rate_share)}% of each Klaviyo limit (`BCSYNC_RATE_SHARE`)"
            + _share_growth(s) + f", keeps {_num(100 * s.fast_reserve)}% of that for the fast lane "
            f"(`BCSYNC_FAST_RESERVE`), and lets batch take at most {_num(100 * s.batch_ceiling)}% of the rest "
            "(`BCSYNC_BATCH_CEILING`). What each lane is sure of per endpoint, fleet-wide (every worker on every host "
            "shares it):", "",
            *_table(("Klaviyo endpoint", "Klaviyo's limit", "fast lane", "default lane", "batch lane"), endpoint_rows),
            *_table(("what", "how fast"), timing)]


def _exceptions(mapping: Mapping) -> list[str]:
    out = ["## Exception types: owner, meaning, what to do", "",
           "`bcsync exceptions --owner TEAM` lists a team's open ones; each is one row per problem and record, "
           "counting up when seen again. Owners come from the mapping's `[owners]`. Types marked reserved can be "
           "given an owner but no flow records them today.", ""]
    for owner in OWNERS:
        rows = [(f"`{t.name}`" + ("" if t.recorded else " (reserved)"), t.meaning, t.action)
                for t in EXCEPTION_TYPES.values() if mapping.owners.owner_of(t.name) == owner]
        out += [f"### {owner}", ""] + (_table(("type", "meaning", "what to do"), rows) if rows else ["none", ""])
    return out


def _values(s: Settings) -> dict[str, str]:
    return {
        "dead_letter_ttl_days": str(s.dead_letter_ttl_days), "fast_reserve_pct": _num(100 * s.fast_reserve),
        "redelivery_seconds": str(s.visibility_timeout_seconds + s.redelivery_check_seconds),
        "task_time_limit_seconds": str(s.task_time_limit_seconds),
        "throttle_park_seconds": str(s.throttle_park_seconds), "max_attempts": str(s.max_attempts),
        "stock_complete_seconds": _num(s.stock_complete_seconds),
        "watermark_held_cycles": str(s.watermark_held_cycles), "stale_after_seconds": _num(s.stale_after_seconds),
        "freshness_clear_after_seconds": _num(s.freshness_clear_after_seconds),
    }


def _procedures(s: Settings) -> list[str]:
    values = _values(s)

    def filled(rows: tuple[tuple[str, ...], ...]) -> list[tuple[str, ...]]:
        return [tuple(cell.format(**values) for cell in row) for row in rows]

    return ["## Daily checks", "", *_table(("check", "how", "healthy when"), filled(procedures.DAILY_CHECKS)),
            "## Weekly checks", "", *_table(("check", "how", "healthy when"), filled(procedures.WEEKLY_CHECKS)),
            "## Reading the alerts", "",
            "`bcsync status` is the first look (`--json` for scripts and alert rules); each line below, what it "
            "means and what to do. An exception's type is explained under \"Exception types\".", "",
            *_table(("what you see", "what it means", "what to do"), filled(procedures.STATUS_LINES)),
            "## Erasing a customer (privacy request)", "",
            *(f"{i}. {step}" for i, step in enumerate(procedures.ERASE_STEPS, 1)), ""]


def _tasks() -> list[str]:
    return ["## Celery task names (what Flower shows)", "",
            ", ".join(f"`{name}`" for name in task_names.ALL), ""]


def render(mapping: Mapping, settings: Settings) -> str:
    """The playbook as Markdown, for this mapping and these settings."""
    head = ["# Operational playbook", "",
            "<!-- generated by `bcsync playbook` from the mapping, the settings and the code's registries; do not "
            "edit by hand -->", "",
            "For operations, ecommerce and finance: where each Blue Cherry object lives in Klaviyo, how fast it gets "
            "there, who owns each kind of problem and what to do about it, what to check every day and week. "
            "Generated for the mapping defaults and default settings; your tenant's own: "
            "`bcsync playbook --out playbook.md`. Commands in detail: [operations.md](operations.md).", ""]
    body = [*_objects(mapping), *_lanes(mapping, settings), *_exceptions(mapping), *_procedures(settings), *_tasks()]
    return "\n".join(head + body).rstrip("\n") + "\n"


def default_settings() -> Settings:
    """The settings' defaults, whatever the environment or .env say (the committed playbook's)."""
    return Settings.model_construct()


def playbook(
    out: Annotated[Path, typer.Option(help="where to write it ('-': print)")] = DEFAULT_OUT,
    defaults: Annotated[bool, typer.Option(
        "--defaults", help="the mapping defaults and default settings, not this fleet's")] = False,
    check: Annotated[bool, typer.Option("--check", help="exit 1 when OUT differs from a fresh generation")] = False,
) -> None:
    """Write the operational playbook (docs/playbook.md) from the mapping, the settings and the code."""
    text = render(Mapping(), default_settings()) if defaults else render(get_mapping(), get_settings())
    if str(out) == "-":
        typer.echo(text, nl=False)
        return
    if check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            typer.echo(f"{out} is out of date: regenerate it with `bcsync playbook"
                       f"{' --defaults' if defaults else ''} --out {out}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"wrote {out}")
