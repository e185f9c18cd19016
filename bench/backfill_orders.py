"""Backfill of N sandbox orders through bulk jobs: events per minute and share of Klaviyo's bulk ceiling.

    .venv/bin/python -m bench.backfill_orders --orders 100000 [--workers 1]

Starts a private redis-server, a Blue Cherry sandbox holding a generated tenant of N historic orders (with
their pick tickets, invoices and credit memos), a Klaviyo sandbox with its rate limits on, and real
`bcsync worker --lane batch` processes; then runs `bcsync backfill orders` as a subprocess and waits until the
Klaviyo sandbox has stored every event it queued. Asserts that every stored event has `backfill: true` (no
flow can fire). Prints the phases' times, events per minute (end to end: reading Blue Cherry, computing,
bulk jobs, Klaviyo ingest) and the share of the bulk ceiling (150 jobs/min x 1000 events = 150,000/min).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

from sandbox.bluecherry.app import create_app as create_bluecherry  # noqa: E402
from sandbox.bluecherry.config import BlueCherrySandboxConfig  # noqa: E402
from sandbox.klaviyo.app import create_app as create_klaviyo  # noqa: E402
from sandbox.klaviyo.config import KlaviyoSandboxConfig  # noqa: E402
from sandbox.server import ServerThread  # noqa: E402
from tests.support.fleet import WorkerProcess, fleet_env, wait_for  # noqa: E402
from tests.support.redis_server import PrivateRedis  # noqa: E402

BULK_CEILING_PER_MINUTE = 150 * 1000
KEY = "bench-key"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=0, help="default: orders / 4")
    parser.add_argument("--workers", type=int, default=1, help="batch worker processes (concurrency 1 each)")
    args = parser.parse_args()
    customers = args.customers or max(1, args.orders // 4)

    redis_server = PrivateRedis.start()
    t0 = time.monotonic()
    bc = ServerThread(create_bluecherry(BlueCherrySandboxConfig(
        subscription_key=KEY, customers=customers, styles=60, orders=args.orders,
        start_time="2026-03-02 10:00:00", frozen=True,
    ))).start(timeout=3600)
    generated = httpx.get(f"{bc.url}/_sandbox/stats", timeout=60).json()["generated"]
    print(f"Blue Cherry tenant generated in {time.monotonic() - t0:.0f} s: {generated}")
    klaviyo = ServerThread(create_klaviyo(KlaviyoSandboxConfig(rate_limits_enabled=True))).start()
    env = fleet_env(redis_server.url, klaviyo.url, BCSYNC_BLUECHERRY_BASE_URL=bc.url,
                    BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=KEY, BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS="100",
                    BCSYNC_TASK_TIME_LIMIT_SECONDS="120", BCSYNC_VISIBILITY_TIMEOUT_SECONDS="300")
    workers = [WorkerProcess("batch", env).start() for _ in range(args.workers)]
    try:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", "from workers.backfill_orders import app; app()", "orders"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        read_done = time.monotonic()
        if done.returncode != 0:
            raise SystemExit(f"backfill failed:\n{done.stdout}\n{done.stderr}")
        summary = done.stdout.strip().splitlines()
        match = re.search(r"(\d+) events queued", done.stdout)
        queued = int(match.group(1)) if match else 0

        def stored() -> int:
            return int(httpx.get(f"{klaviyo.url}/_sandbox/state?summary=true", timeout=120)
                       .json()["counts"]["events"])

        wait_for(lambda: stored() >= queued, timeout=6 * 3600, interval=2.0, message="every event in Klaviyo")
        end = time.monotonic()
        state = httpx.get(f"{klaviyo.url}/_sandbox/state", timeout=600).json()
        events = [e for evs in state["events"].values() for e in evs]
        assert events and all(e["backfill"] is True for e in events), "a backfill event could trigger flows"
        jobs = len(state["jobs"])
        minutes = (end - start) / 60
        rate = len(events) / minutes
        print("\n".join(line for line in summary if line.strip()))
        print(f"orders {args.orders}, events stored {len(events)} (all backfill=true), bulk jobs {jobs}, "
              f"duplicates suppressed {state['duplicates_suppressed']}")
        print(f"backfill command (read + compute + enqueue): {read_done - start:.1f} s; "
              f"until the last event was stored: {end - start:.1f} s")
        print(f"throughput: {rate:,.0f} events/min = {rate / BULK_CEILING_PER_MINUTE:.1%} of the Klaviyo bulk "
              f"ceiling (150 jobs/min x 1000 events)")
    finally:
        for w in workers:
            w.stop()
        klaviyo.stop()
        bc.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
