"""`bcsync status`: what an operator checks first."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console

from config.lanes import LANES
from config.settings import get_settings
from connectors.klaviyo.limiter import FleetRateLimiter
from delivery.freshness import CHECKS, Reading, open_crossings, readings
from state.beat import BeatHeartbeat
from state.buffers import buffer_ages
from state.factory import stores
from state.poller_health import PollerHealth
from state.unacked import UnackedMessages
from sync.exceptions import ExceptionRecord
from workers.render_cli import compact_table, short_time

console = Console()


def collect_status() -> dict[str, Any]:
    s = get_settings()
    client = stores().redis
    # a message in a lane's taking list is still waiting: its taker died before recording it
    queues = {lane: int(client.llen(stores().keys.queue(lane))) + int(client.llen(stores().keys.queue_taking(lane)))
              for lane in LANES}
    dlq = stores().dead_letters
    memory = client.info("memory")
    limiter = FleetRateLimiter(client, s.key_prefix, share=s.rate_share, share_max=s.rate_share_max,
                               fast_reserve=s.fast_reserve, batch_ceiling=s.batch_ceiling, scale=s.rate_limit_scale)
    now = time.time()
    paused = {ep: round(until - now, 1) for ep, until in limiter.paused_endpoints().items()}
    parked = {ep: {"until": park.until, "reason": park.reason} for ep, park in limiter.parked_endpoints().items()}
    beat_tick = BeatHeartbeat(client, s.key_prefix).last_tick()
    exceptions = stores().exceptions.list(limit=10**9)  # one read of the register for both views below
    fresh = readings(stores(), now, limiter)
    return {
        # per resource, lane and endpoint: the freshness checks' values and thresholds (delivery/freshness.py),
        # and the crossings not cleared yet (each an open exception)
        "freshness": [r.as_json() for r in fresh],
        "freshness_crossed": open_crossings(stores()),
        "queues": queues,
        # taken by a worker, not yet acknowledged; "orphaned": no live worker vouched for them lately (their
        # worker died), back on the lane within the visibility timeout + the redelivery check
        "unacked": {lane: u.as_json() for lane, u in UnackedMessages(client, s.key_prefix).by_lane(
            LANES, now, orphaned_after=3 * s.unacked_heartbeat_seconds).items()},
        "lanes": stores().lane_stats.summary(LANES),
        "delayed_retries": stores().delayed.pending(),
        # operation keys an envelope holds (queued, scheduled or being sent): each is in flight once
        "in_flight_operations": stores().inflight.count(),
        # since when Klaviyo has failed transiently, and the envelopes the half-open probe will resume
        "klaviyo_outage": {"since": stores().outage.since(), "waiting": stores().outage.waiting()},
        "buffers": {name: age.as_dict() for name, age in buffer_ages(stores()).items()},
        "dead_letters": {lane: dlq.count(lane) for lane in LANES},
        "exceptions": exception_counts(exceptions),
        # a mapping that cannot read the tenant's data: one open exception per status value, date field or
        # variant-id template, with examples (docs/operations.md, "Loud failures")
        "mapping_problems": [mapping_problem(rec) for rec in exceptions if rec.type in MAPPING_PROBLEMS],
        # per resource: the poller's last cycle, its read error if failing, cycles in a row with the watermark held
        "poller": {name: health.model_dump() for name, health in PollerHealth(client, s.key_prefix).all().items()},
        "watermark_held_cycles": s.watermark_held_cycles,
        "paused_endpoints": paused,
        "parked_endpoints": parked,
        # the beat holding the schedule lock ticks every second or so; None: no beat ticked since Redis started
        "beat_last_tick": beat_tick,
        "beat_last_tick_age_seconds": None if beat_tick is None else round(max(0.0, now - beat_tick), 1),
        "redis_memory": {
            "used": memory.get("used_memory_human"),
            "peak": memory.get("used_memory_peak_human"),
            "maxmemory": memory.get("maxmemory_human"),
            "policy": memory.get("maxmemory_policy"),
        },
    }


MAPPING_PROBLEMS = ("unknown_status", "unparseable_date", "variant_id_mismatch")


def exception_counts(records: list[ExceptionRecord]) -> dict[str, int]:
    """Open exceptions by owner/type (`ExceptionRegister.counts`, from records already read)."""
    by: dict[str, int] = {}
    for rec in records:
        by[f"{rec.owner}/{rec.type}"] = by.get(f"{rec.owner}/{rec.type}", 0) + 1
    return by


def mapping_problem(rec: ExceptionRecord) -> dict[str, Any]:
    return {"type": rec.type, "key": rec.record_key, "count": rec.count, "owner": rec.owner,
            "last_seen": rec.last_seen, "examples": rec.details.get("examples", []), "reason": rec.reason}


def _example(kind: str, example: Mapping[str, Any]) -> str:
    if kind == "variant_id_mismatch":
        catalog = f" (catalog: {example['catalog_id']!r})" if example.get("catalog_id") else " (no catalog variant)"
        return f"SKU {example.get('sku')} -> {example.get('stock_id')!r}{catalog}"
    if kind == "unparseable_date":
        return f"{example.get('value')!r} on {example.get('record')}"
    return str(example.get("record"))


def mapping_problem_line(problem: Mapping[str, Any]) -> str:
    """`unknown_status order.ord_status=Z: 12x, e.g. order:SO1, order:SO2`: what, how often, where to look."""
    examples = ", ".join(_example(problem["type"], e) for e in problem["examples"][:3])
    return (f"mapping problem {problem['type']} {problem['key']}: {problem['count']}x"
            + (f", e.g. {examples}" if examples else "") + f" (bcsync exceptions --type {problem['type']})")


def freshness_lines(fresh: list[Mapping[str, Any]], crossed: list[Mapping[str, Any]]) -> list[str]:
    """One line per check with each subject's value (`!` marks a value over its threshold), then the crossings."""
    lines = []
    for check, (_, unit, what) in CHECKS.items():
        values = [Reading(r["check"], r["subject"], r["value"], r["threshold"], r.get("quiet", False))
                  for r in fresh if r["check"] == check]
        shown = [f"{r.subject} {'-' if r.value is None else _short(r.value)}{'!' if r.over else ''}" for r in values
                 if r.value is not None or check in ("watermark_age", "read_age")]
        if shown:
            lines.append(f"freshness, {what}{f' ({unit})' if unit else ''}: {', '.join(shown)}")
    over = [f"{c['type']} {c['subject']} since {short_time(c['since'])} UTC ({_short(c['value'])} > "
            f"{_short(c['threshold'])})" + (" clearing" if c.get("below_since") else "") for c in crossed]
    lines.append(f"freshness thresholds crossed: {'; '.join(over) or 'none'}")
    return lines


def _short(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"


def poller_lines(poller: Mapping[str, Mapping[str, Any]], held_after: int) -> list[str]:
    """The poller's read errors, its invalid records of the last cycle and its watermarks held back too long."""
    failing = {name: f"{h['error_kind']} since {short_time(h['failing_since'])} UTC, {h['failures']} cycle(s): "
               f"{h['error']}" for name, h in poller.items() if h.get("error")}
    invalid = {name: f"{h['invalid']} of {h['records']}" for name, h in poller.items() if h.get("invalid")}
    held = {name: f"{h['held']} cycles" for name, h in poller.items() if h.get("held", 0) > held_after}
    return [f"poller read errors: {'; '.join(f'{k} {v}' for k, v in failing.items()) or 'none'}",
            f"poller invalid records (last cycle): {_listing(invalid)}",
            f"watermarks held back more than {held_after} cycles: {_listing(held)}"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _unacked(lane: Mapping[str, Any]) -> str:
    """`2 (41)`: two messages taken by workers and not acknowledged, the oldest taken 41 s ago."""
    return f"{lane['count']} ({_seconds(lane['oldest_seconds'])})" if lane["count"] else "0"


def _listing(items: Mapping[str, object]) -> str:
    return ", ".join(f"{k} {v}" for k, v in items.items()) if items else "none"


def show_status(as_json: bool) -> None:
    data = collect_status()
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = compact_table("Lanes", ("lane", "queued", "unacked (s)", "delivered", "latency p50 / p95 (s)"),
                          "dead letters")
    for lane in LANES:
        stats = data["lanes"][lane]
        table.add_row(lane, str(data["queues"][lane]), _unacked(data["unacked"][lane]), str(stats["delivered"]),
                      f"{_seconds(stats['p50_seconds'])} / {_seconds(stats['p95_seconds'])}",
                      str(data["dead_letters"][lane]))
    console.print(table)
    s = get_settings()
    orphaned = {lane: u["orphaned"] for lane, u in data["unacked"].items() if u["orphaned"]}
    console.print(f"unacked of dead workers (back on their lane within "
                  f"{s.visibility_timeout_seconds + s.redelivery_check_seconds} s): {_listing(orphaned)}")
    console.print(f"delayed retries waiting: {data['delayed_retries']}; operations in flight: "
                  f"{data['in_flight_operations']}")
    outage = data["klaviyo_outage"]
    if outage["since"] is not None:
        console.print(f"Klaviyo failing since {short_time(outage['since'])} UTC: {outage['waiting']} envelope(s) "
                      "resume as soon as the probe gets an answer")
    buffers = {name: f"{b['items']}" + (f" ({_seconds(b['oldest_age_seconds'])} s)" if b["items"] else "")
               for name, b in data["buffers"].items()}
    console.print(f"buffers, items (oldest age): {_listing(buffers)}")
    console.print(f"paused endpoints (s left): {_listing(data['paused_endpoints'])}")
    parked = {ep: f"until {short_time(p['until'])} UTC ({p['reason']})" for ep, p in data["parked_endpoints"].items()}
    console.print(f"parked endpoints: {_listing(parked)}")
    age = data["beat_last_tick_age_seconds"]
    console.print("beat's last tick: " + ("never (no beat ticked since Redis started)" if age is None
                                          else f"{age:g} s ago ({short_time(data['beat_last_tick'])} UTC)"))
    console.print(f"open exceptions (owner/type): {_listing(data['exceptions'])}")
    for problem in data["mapping_problems"]:
        console.print(mapping_problem_line(problem), markup=False)
    for line in freshness_lines(data["freshness"], data["freshness_crossed"]):
        console.print(line, markup=False)
    for line in poller_lines(data["poller"], data["watermark_held_cycles"]):
        console.print(line, markup=False)
    mem = data["redis_memory"]
    limit = "no maxmemory set" if mem["maxmemory"] in (None, "0B") else f"max {mem['maxmemory']}"
    console.print(f"Redis memory: {mem['used']} (peak {mem['peak']}, {limit}, policy {mem['policy']})")
