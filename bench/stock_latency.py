"""Fast-lane latency of restocks under a batch backlog: ERP change handed to the fleet -> Klaviyo sandbox
receipt (the variant's `updated` time in the sandbox), p50/p95/p99.

Setup: a private Redis, the Klaviyo sandbox with rate limits scaled (catalog bulk jobs drain slowly), a
refresh of `--backlog` variants queued on the batch lane, one fast and one batch worker (concurrency 1),
then `--restocks` restocks of high-demand SKUs (0 -> n), one every `--gap` seconds, each handed to the fast
lane exactly as the poller does (`bcsync.stock_records`).

    .venv/bin/python -m bench.stock_latency --backlog 50000 --restocks 40
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.redis_server import PrivateRedis
from tests.integration.stock.conftest import StockFleet, inventory_row, variant_id
from tests.support.fleet import wait_for

OLD = "2026-11-20T10:00:00~2026-11-20T18:00:00.000000Z"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--restocks", type=int, default=40)
    parser.add_argument("--gap", type=float, default=0.5)
    parser.add_argument("--scale", type=float, default=0.02, help="rate-limit scale (sandbox and fleet)")
    args = parser.parse_args()

    redis_server = PrivateRedis.start()
    fleet = StockFleet(
        redis_server.url, KlaviyoSandboxConfig(rate_limit_scale=args.scale, job_step_seconds=0.1),
        Path(tempfile.mkdtemp(prefix="bcsync-bench-")),
        BCSYNC_RATE_LIMIT_SCALE=str(args.scale), BCSYNC_RATE_SHARE="1.0",
    )
    try:
        hot = [f"HOT-B{n:03d}---M" for n in range(args.restocks)]
        for ext in hot:
            fleet.seed_variants(ext.split("---")[0], [ext], quantity=0)
            fleet.state.set_figure(ext, 0, OLD)
            fleet.state.set_planned(ext, 0, OLD)
        fleet.worker("batch")
        fleet.worker("fast")
        fleet.start_refresh(args.backlog, OLD)
        fleet.start_flusher(1.0)
        wait_for(lambda: len(fleet.sandbox.jobs.jobs) >= 2, 300, message="the backlog draining")

        sent: dict[str, float] = {}
        for n, ext in enumerate(hot):
            color = ext.split("-")[1]
            row = inventory_row("HOT", color, "M", "WH1", oh=5 + n, last_mod="2026-11-20 11:00:00")
            sent[ext] = time.time()
            fleet.records("inventory", [row], "2026-11-20T19:00:00+00:00", "fast")
            time.sleep(args.gap)
        wait_for(lambda: all(fleet.quantity(e) for e in hot), 300, message="every restock in Klaviyo")
        latencies = [
            fleet.sandbox.catalog.variants[variant_id(e)].updated.timestamp() - sent[e] for e in hot
        ]
        jobs = len(fleet.sandbox.jobs.jobs)
        print(f"backlog {args.backlog} variants ({args.backlog // 100} bulk jobs), {jobs} created so far; "
              f"{args.restocks} restocks, rate-limit scale {args.scale}")
        print("fast-lane latency ERP change -> Klaviyo receipt (ms): "
              f"p50 {1000 * statistics.median(latencies):.0f}  p95 {1000 * percentile(latencies, 0.95):.0f}  "
              f"p99 {1000 * percentile(latencies, 0.99):.0f}  max {1000 * max(latencies):.0f}")
    finally:
        fleet.stop()
        redis_server.stop()


if __name__ == "__main__":
    main()
