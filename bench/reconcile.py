"""Reconciliation while live trading is delivered (issue 20): does it slow the consent guard and the fast lane,
does GET /api/profiles see 429s, and what does it cost per 10,000 customers?

    python -m bench.reconcile [--customers 20000] [--seconds 60] [--scale 1.0] [--write docs/performance.md]

Both sandboxes (the Klaviyo one with its rate limits on, every tier times --scale, and the fleet told the same), a
private Redis, one worker per lane at concurrency 2. The tenant's customers, each with an order, are delivered
first. Then two phases of the same live trading - every 0.5 s new customers opted in to e-mail (a first sync: the
consent guard reads GET /api/profiles), consent changes of existing customers and new orders, polled and
delivered -: without reconciliation, then while `bcsync reconcile all` runs (at least --seconds). Printed: the fast
lane's p50/p99 delivery latency per phase (consent goes fast, so this is the guard's wait plus the send), 429s per
Klaviyo endpoint in each phase, and reconciliation's requests and minutes scaled to 10,000 customers. On this
machine (2 shared cores) run it small; numbers for docs/performance.md come from its output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.doc_blocks import write_block
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.redis_server import PrivateRedis
from state.keys import RedisKeys
from tests.integration.orders.conftest import OrderFleet, running_fleet

BCSYNC = str(Path(sys.executable).with_name("bcsync"))


def p(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3) if ordered else None


def throttled(f: OrderFleet) -> dict[str, int]:
    stats = httpx.get(f"{f.klaviyo_url}/_sandbox/stats", timeout=30).json()["endpoints"]
    return {key: int(s.get("throttled", 0)) for key, s in stats.items()}


def backfill(f: OrderFleet, what: str) -> None:
    run = subprocess.run([BCSYNC, "backfill", what, "--workers", "2"], env=f.env, capture_output=True, text=True,
                         timeout=3600)
    if run.returncode != 0:
        raise SystemExit(f"bcsync backfill {what} failed: {run.stderr[-2000:]}")


def load(f: OrderFleet, customers: int) -> list[str]:
    """Customers (a third opted in to e-mail), one confirmed order each, loaded as a first load is: the poller's
    watermarks set past them, then `bcsync backfill customers` (bulk profile import, consent under the guard)
    and `bcsync backfill orders` (bulk event jobs, the profiles' aggregates). Live single profile upserts would
    take about half an hour for 20,000 customers at Klaviyo's limits; a real first load goes this way too."""
    codes: list[str] = []
    upc = f.upcs[0]
    for start in range(0, customers, 500):
        ops = [{"op": "create_customer", **({"email_optin": "Y"} if (start + i) % 3 == 0 else {})}
               for i in range(min(500, customers - start))]
        touched = f.apply(*ops)
        codes += [t["record"]["customer"] for t in touched if t["resource"] == "customer"]
    for start in range(0, len(codes), 500):
        f.apply(*[{"op": "place_order", "customer": c, "confirm": True, "lines": [{"upc": upc, "qty": 1}]}
                  for c in codes[start:start + 500]])
    f.capture()  # the poller's first cycle: its watermarks move past the loaded records, nothing is sent
    backfill(f, "customers")
    f.wait_idle(1800)
    backfill(f, "orders")
    f.wait_idle(1800)
    return codes


def trade(f: OrderFleet, codes: list[str], stop: threading.Event, rng: random.Random) -> int:
    """Live trading until `stop`: each tick 2 new opted-in customers, 2 consent changes, 1 order; polled."""
    ticks = 0
    upc = f.upcs[0]
    while not stop.is_set():
        ops: list[dict[str, Any]] = [{"op": "create_customer", "email_optin": "Y"} for _ in range(2)]
        ops += [{"op": "consent", "customer": rng.choice(codes), "channel": "email", "optin": rng.random() < 0.5}
                for _ in range(2)]
        ops.append({"op": "place_order", "customer": rng.choice(codes), "confirm": True,
                    "lines": [{"upc": upc, "qty": 1}]})
        f.apply(*ops)
        f.emit(f.capture())
        ticks += 1
        time.sleep(0.5)
    return ticks


def phase(f: OrderFleet, codes: list[str], seconds: float, reconcile: bool) -> dict[str, Any]:
    latencies = RedisKeys(f.prefix).latencies("fast")
    f.wait_idle(300)
    f.redis.delete(latencies)
    before = throttled(f)
    stop = threading.Event()
    summary: dict[str, Any] = {}
    started = time.monotonic()
    trader = threading.Thread(target=lambda: trade(f, codes, stop, random.Random(7)), daemon=True)
    trader.start()
    if reconcile:
        run = subprocess.run([BCSYNC, "reconcile", "all", "--json", "--dry-run"], env=f.env, capture_output=True,
                             text=True, timeout=3600)
        if run.returncode != 0:
            raise SystemExit(f"bcsync reconcile failed: {run.stderr[-2000:]}")
        summary = json.loads(run.stdout)
    while time.monotonic() - started < seconds:
        time.sleep(0.2)
    stop.set()
    trader.join()
    f.wait_idle(300)
    values = [float(v) for v in f.redis.lrange(latencies, 0, -1)]
    after = throttled(f)
    return {"fast_p50": p(values, 0.5), "fast_p99": p(values, 0.99), "fast_deliveries": len(values),
            "throttled": {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)},
            "summary": summary, "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=60.0, help="each phase lasts at least this long")
    parser.add_argument("--scale", type=float, default=1.0, help="Klaviyo's tiers times this (sandbox and fleet)")
    parser.add_argument("--write", type=Path, help="put the output between the doc's <!-- bench.reconcile --> markers")
    args = parser.parse_args()
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    config = KlaviyoSandboxConfig(rate_limits_enabled=True, rate_limit_scale=args.scale)
    server = PrivateRedis.start()
    try:
        with tempfile.TemporaryDirectory() as folder, running_fleet(
                server, Path(folder), "", klaviyo_config=config, BCSYNC_RATE_LIMIT_SCALE=str(args.scale),
                BCSYNC_LATENCY_SAMPLES="100000") as f:  # every fast delivery of a phase, not the last 200
            t0 = time.monotonic()
            codes = load(f, args.customers)
            loaded = time.monotonic() - t0
            print(f"loaded {len(codes)} customers with an order each in {loaded:.0f} s", flush=True)
            without = phase(f, codes, args.seconds, reconcile=False)
            with_recon = phase(f, codes, args.seconds, reconcile=True)
    finally:
        server.stop()
    s = with_recon["summary"]
    compared = max(1, int(s["compared"].get("customers", 0)))
    requests = sum(s["requests"].values())
    per10k = 10_000 / compared
    lines: list[str] = [f"loaded {len(codes)} customers with an order each in {loaded:.0f} s"]

    def out(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    out(f"customers {args.customers}, scale {args.scale}, phases >= {args.seconds:.0f} s")
    out(f"{'phase':<26}{'fast p50 s':>12}{'fast p99 s':>12}{'fast sent':>11}  429s")
    for name, r in (("without reconciliation", without), ("with reconciliation", with_recon)):
        out(f"{name:<26}{r['fast_p50']!s:>12}{r['fast_p99']!s:>12}{r['fast_deliveries']:>11}  "
              f"{r['throttled'] or 0}")
    ratio = (with_recon["fast_p99"] or 0) / (without["fast_p99"] or 1)
    out(f"fast-lane p99 with / without: {ratio:.2f}")
    profiles_429 = sum(n for key, n in with_recon["throttled"].items() if "profiles" in key and "import" not in key)
    out(f"GET /api/profiles 429s during reconciliation: {profiles_429}")
    out(f"reconciliation: {compared} customers, {requests} Klaviyo reads ({dict(s['requests'])}), "
          f"{s['seconds']:.1f} s, {len(s['differences'])} differences")
    found: dict[str, int] = {}
    for d in s["differences"]:
        found[d["type"]] = found.get(d["type"], 0) + 1
    out(f"differences reported (after the re-check of what changed during the run): {found}")
    out(f"cost per 10,000 customers: {requests * per10k:.0f} requests, {s['seconds'] * per10k / 60:.1f} minutes")
    out(f"in flight, not compared (changes still being delivered when re-checked): "
        f"{s.get('in_flight_not_compared') or {}}")
    if args.write:
        loads = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        write_block(args.write, "bench.reconcile",
                    f"Measured {started_at} on {os.cpu_count()} cores (load average {loads} at the end), "
                    f"`python -m bench.reconcile {' '.join(sys.argv[1:])}`:\n\n```\n" + "\n".join(lines) + "\n```")
        print(f"written to {args.write}")


if __name__ == "__main__":
    main()
