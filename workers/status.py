"""`bcsync status`: what an operator checks first."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from config.celery import LANES
from config.settings import get_settings
from workers import stores

console = Console()


def collect_status() -> dict[str, Any]:
    s = get_settings()
    client = stores.client()
    queues = {lane: int(client.llen(f"{s.key_prefix}:broker:{lane}")) for lane in LANES}
    dlq = stores.dead_letters()
    memory = client.info("memory")
    paused = {k.split(":")[-1]: int(client.ttl(k)) for k in client.scan_iter(f"{s.key_prefix}:rl:pause:*")}
    parked = {k.split(":")[-1]: client.get(k) for k in client.scan_iter(f"{s.key_prefix}:rl:park:*")}
    return {
        "queues": queues,
        "delayed_retries": stores.delayed().pending(),
        "dead_letters": {lane: dlq.count(lane) for lane in LANES},
        "exceptions": stores.exceptions().counts(),
        "paused_endpoints": paused,
        "parked_endpoints": parked,
        "redis_memory": {
            "used": memory.get("used_memory_human"),
            "peak": memory.get("used_memory_peak_human"),
            "maxmemory": memory.get("maxmemory_human"),
            "policy": memory.get("maxmemory_policy"),
        },
    }


def show_status(as_json: bool) -> None:
    data = collect_status()
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table(title="Lanes")
    for col in ("lane", "queued", "dead letters"):
        table.add_column(col)
    for lane in LANES:
        table.add_row(lane, str(data["queues"][lane]), str(data["dead_letters"][lane]))
    console.print(table)
    console.print(f"delayed retries waiting: {data['delayed_retries']}")
    console.print(f"paused endpoints: {data['paused_endpoints'] or 'none'}; parked: {data['parked_endpoints'] or 'none'}")
    console.print(f"open exceptions: {data['exceptions'] or 'none'}")
    mem = data["redis_memory"]
    console.print(f"Redis memory: {mem['used']} (peak {mem['peak']}, max {mem['maxmemory']}, policy {mem['policy']})")
