"""Backfill of N sandbox orders through bulk jobs: events per minute and share of Klaviyo's bulk ceiling.

    .venv/bin/python -m bench.backfill_orders --orders 100000 [--workers 2] [--batch-workers 1] [--write FILE]

Starts a private redis-server, a Blue Cherry sandbox holding a generated tenant of N historic orders (with
their pick tickets, invoices and credit memos), a Klaviyo sandbox with its rate limits on (its own process), and real
`bcsync worker --lane batch` processes (``--batch-workers``); then runs `bcsync backfill orders --workers W` (W
backfill processes, workers/backfill_parallel.py) as a subprocess and waits until the Klaviyo sandbox has stored
every event it queued. Asserts that every stored event has `backfill: true` (no flow can fire). Prints the times,
events per minute (end to end: reading Blue Cherry, computing, bulk jobs, Klaviyo ingest), the share of the bulk
ceiling (the bulk events endpoint's steady limit x 1,000 events a job) and a model for 1,000,000 orders: this run's
reading and computing time per order scaled linearly, against the time the same events take at the bulk ceiling;
the pipeline overlaps the two, so the model is the longer one. ``--write FILE`` puts the result block into FILE
(between ``<!-- bench.backfill_orders -->`` markers).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]

from bench.budget import cpu_seconds  # noqa: E402
from bench.delivery import KlaviyoSandboxProcess  # noqa: E402
from bench.doc_blocks import write_block  # noqa: E402
from bench.yardstick import describe, yardstick_ms  # noqa: E402
from config.collector import set_up_collector  # noqa: E402
from config.settings import Settings  # noqa: E402
from sandbox.bluecherry.app import create_app as create_bluecherry  # noqa: E402
from sandbox.bluecherry.config import BlueCherrySandboxConfig  # noqa: E402
from sandbox.server import ServerThread  # noqa: E402
from tests.support.fleet import WorkerProcess, fleet_env, wait_for, wait_idle  # noqa: E402
from tests.support.redis_server import PrivateRedis  # noqa: E402
from workers.backfill_parallel import bulk_ceiling_per_minute  # noqa: E402

BULK_CEILING_PER_MINUTE = bulk_ceiling_per_minute()
KEY = "bench-key"
MODEL_ORDERS = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=0, help="default: orders / 4")
    parser.add_argument("--workers", type=int, default=1, help="backfill processes (bcsync backfill orders --workers)")
    parser.add_argument("--batch-workers", type=int, default=1, help="batch worker processes (concurrency 1 each)")
    parser.add_argument("--write", type=Path, help="put the result block into this markdown file")
    args = parser.parse_args()
    customers = args.customers or max(1, args.orders // 4)

    yardstick = yardstick_ms()  # before anything runs: the machine's speed, for comparing blocks across machines
    redis_server = PrivateRedis.start()
    t0 = time.monotonic()
    bc = ServerThread(create_bluecherry(BlueCherrySandboxConfig(
        subscription_key=KEY, customers=customers, styles=60, orders=args.orders,
        start_time="2026-03-02 10:00:00", frozen=True,
    ))).start(timeout=3600)
    generated = httpx.get(f"{bc.url}/_sandbox/stats", timeout=60).json()["generated"]
    # the Blue Cherry sandbox serves from this process, as `bcsync sandbox bluecherry` would: collector set alike
    set_up_collector(Settings().gc_young_threshold)  # the generated tenant frozen too: served, never freed
    print(f"Blue Cherry tenant generated in {time.monotonic() - t0:.0f} s: {generated}")
    # Klaviyo's sandbox in its own process, as Klaviyo is another machine: in this one its validation of every
    # bulk job held the interpreter the Blue Cherry sandbox serves the backfill's pages from
    klaviyo = KlaviyoSandboxProcess(1.0).start()
    env = fleet_env(redis_server.url, klaviyo.url, BCSYNC_BLUECHERRY_BASE_URL=bc.url,
                    BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=KEY, BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS="100",
                    BCSYNC_TASK_TIME_LIMIT_SECONDS="120", BCSYNC_VISIBILITY_TIMEOUT_SECONDS="300")
    workers = [WorkerProcess("batch", env, 1).start() for _ in range(args.batch_workers)]
    try:
        # the customer master first, as on a go-live: order events and aggregates go to profiles that exist
        loaded = subprocess.run([sys.executable, "-m", "workers.cli", "backfill", "customers", "--workers",
                                 str(args.workers)], cwd=ROOT, env=env, capture_output=True, text=True)
        if loaded.returncode != 0:
            raise SystemExit(f"customer backfill failed:\n{loaded.stdout}\n{loaded.stderr}")
        wait_idle(redis.Redis.from_url(redis_server.url, decode_responses=True), env["BCSYNC_KEY_PREFIX"],
                  timeout=3600)
        print(f"customers loaded: {loaded.stdout.strip().splitlines()[-1]}")
        worker_pids = [w.process.pid for w in workers if w.process is not None]

        def stored() -> int:
            return int(httpx.get(f"{klaviyo.url}/_sandbox/state?summary=true", timeout=120)
                       .json()["counts"]["events"])

        cpu_before = cpu_now(worker_pids, klaviyo, redis_server)
        requests_before = requests_by_endpoint(klaviyo.stats())
        start = time.monotonic()
        command = [sys.executable, "-m", "workers.cli", "backfill", "orders", "--workers", str(args.workers)]
        # Klaviyo's count of stored events, sampled each second while the command runs: the last event may be
        # stored before the command ends (the profile aggregates go on, to another endpoint)
        samples: list[tuple[float, int]] = []
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(subprocess.run, command, cwd=ROOT, env=env, capture_output=True, text=True)
            while not running.done():
                samples.append((time.monotonic(), stored()))
                wait([running], timeout=1.0)
            done = running.result()
        read_done = time.monotonic()
        cpu_used = {name: seconds - cpu_before[name]
                    for name, seconds in cpu_now(worker_pids, klaviyo, redis_server).items()}
        if done.returncode != 0:
            raise SystemExit(f"backfill failed:\n{done.stdout}\n{done.stderr}")
        summary = done.stdout.strip().splitlines()
        match = re.search(r"\d+ orders, \d+ documents: (\d+) events queued", done.stdout)
        queued = int(match.group(1)) if match else 0

        wait_for(lambda: stored() >= queued, timeout=6 * 3600, interval=1.0, message="every event in Klaviyo")
        # the first sample holding every event, else now (then the last one came after the command)
        end = next((at for at, count in samples if count >= queued), time.monotonic())
        state = httpx.get(f"{klaviyo.url}/_sandbox/state", timeout=600).json()
        events = [e for evs in state["events"].values() for e in evs]
        assert events and all(e["backfill"] is True for e in events), "a backfill event could trigger flows"
        sandbox_stats = klaviyo.stats()
        requests = {k: n - requests_before.get(k, 0) for k, n in requests_by_endpoint(sandbox_stats).items()}
        sizes = {int(size): n for size, n in sandbox_stats["bulk_event_job_sizes"].items()}
        bulk_endpoint = next(v for k, v in sandbox_stats["endpoints"].items() if "event-bulk-create-jobs" in k)
        # which phase bounds the run: the orders phase's own pace against the ceiling, and Klaviyo's busiest minute
        phases = re.search(r"documents ([\d.]+) s, orders ([\d.]+) s, profile aggregates ([\d.]+) s",
                           " ".join(done.stdout.split()))
        event_jobs, full_jobs = sum(sizes.values()), sizes.get(1000, 0)
        minutes = (end - start) / 60
        rate = len(events) / minutes
        print("\n".join(line for line in summary if line.strip() and "━" not in line))
        read_seconds = read_done - start
        per_order = len(events) / args.orders
        model_read = read_seconds / args.orders * MODEL_ORDERS / 60
        model_ceiling = per_order * MODEL_ORDERS / BULK_CEILING_PER_MINUTE
        block = "\n".join([
            f"`python -m bench.backfill_orders --orders {args.orders} --workers {args.workers} "
            f"--batch-workers {args.batch_workers}`: {args.workers} backfill process(es), {args.batch_workers} batch "
            "worker(s), Klaviyo sandbox at its rate limits in its own process",
            "",
            "| orders | events stored (all `backfill=true`) | bulk event jobs (with 1,000 events) | "
            "duplicates suppressed | backfill command | until the last event was stored | events/min | "
            "share of the bulk ceiling |",
            "|---|---|---|---|---|---|---|---|",
            f"| {args.orders:,} | {len(events):,} | {event_jobs} ({full_jobs / max(1, event_jobs):.1%}) | "
            f"{state['duplicates_suppressed']} | {read_seconds:.1f} s | "
            f"{end - start:.1f} s | {rate:,.0f} | {rate / BULK_CEILING_PER_MINUTE:.1%} |",
            "",
            f"Model for {MODEL_ORDERS:,} orders ({per_order:.2f} events per order): reading and computing "
            f"{model_read:.1f} min at this run's {args.orders / read_seconds:,.0f} orders/s; the same events at the "
            f"bulk ceiling ({BULK_CEILING_PER_MINUTE:,}/min) {model_ceiling:.1f} min; end to end about "
            f"{max(model_read, model_ceiling):.1f} min (the longer: they overlap).",
            "",
            (f"Phases of the backfill command: documents {phases[1]} s, orders {phases[2]} s (their events at "
             f"{len(events) / float(phases[2]) * 60:,.0f}/min = "
             f"{len(events) / float(phases[2]) * 60 / BULK_CEILING_PER_MINUTE:.1%} of the ceiling), profile "
             f"aggregates {phases[3]} s; the rest is starting and ending. " if phases else "")
            + f"Klaviyo's busiest minute held {bulk_endpoint['max_steady_window']} of "
            f"{bulk_endpoint['steady_limit']} bulk event jobs; {bulk_endpoint['throttled']} answered 429. "
            "Requests Klaviyo received from the backfill on: " + ", ".join(
                f"`{key}` {n:,}" for key, n in sorted(requests.items(), key=lambda kv: -kv[1]) if n) + ".",
            "",
            f"While the backfill command ran, cores busy on average ({os.cpu_count()} in the machine): " + ", ".join(
                f"{name} {seconds / read_seconds:.2f}" for name, seconds in cpu_used.items())
            + f"; {describe(yardstick)}.",
        ])
        print(block)
        if args.write:
            write_block(args.write, f"bench.backfill_orders workers {args.workers}", block)
    finally:
        for w in workers:
            w.stop()
        klaviyo.stop()
        bc.stop()
        redis_server.stop()


def requests_by_endpoint(sandbox_stats: dict[str, Any]) -> dict[str, int]:
    """Requests the Klaviyo sandbox received so far, per endpoint (reads too: a backfill should make few)."""
    return {key: int(stats["received"]) for key, stats in sandbox_stats["endpoints"].items()}


def cpu_now(worker_pids: list[int], klaviyo: KlaviyoSandboxProcess, redis_server: PrivateRedis) -> dict[str, float]:
    """CPU seconds so far of each part of the run: the backfill command's processes (this process's reaped
    children: the command has ended when this is read after it), the batch workers, the two sandboxes (Blue
    Cherry's serves from a thread of this process, which otherwise waits), Redis."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    klaviyo_pid = klaviyo.process.pid if klaviyo.process is not None else None
    return {
        "backfill processes": children.ru_utime + children.ru_stime,
        "batch workers": cpu_seconds(worker_pids),
        "Klaviyo sandbox": cpu_seconds([klaviyo_pid] if klaviyo_pid else []),
        "Blue Cherry sandbox": own.ru_utime + own.ru_stime,
        "Redis": cpu_seconds([redis_server.process.pid]),
    }


if __name__ == "__main__":
    main()
