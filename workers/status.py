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
from state.beat import BeatHeartbeat
from state.buffers import buffer_ages
from state.factory import stores
from state.unacked import UnackedMessages
from workers.render_cli import compact_table, short_time

console = Console()


def collect_status() -> dict[str, Any]:
    s = get_settings()
    client = stores().redis
    queues = {lane: int(client.llen(stores().keys.queue(lane))) for lane in LANES}
    dlq = stores().dead_letters
    memory = client.info("memory")
    limiter = FleetRateLimiter(client, s.key_prefix, share=s.rate_share, fast_reserve=s.fast_reserve,
                               batch_ceiling=s.batch_ceiling, scale=s.rate_limit_scale)
    now = time.time()
    paused = {ep: round(until - now, 1) for ep, until in limiter.paused_endpoints().items()}
    parked = {ep: {"until": park.until, "reason": park.reason} for ep, park in limiter.parked_endpoints().items()}
    beat_tick = BeatHeartbeat(client, s.key_prefix).last_tick()
    return {
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
        "exceptions": stores().exceptions.counts(),
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
    mem = data["redis_memory"]
    limit = "no maxmemory set" if mem["maxmemory"] in (None, "0B") else f"max {mem['maxmemory']}"
    console.print(f"Redis memory: {mem['used']} (peak {mem['peak']}, {limit}, policy {mem['policy']})")
