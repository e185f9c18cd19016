"""Benchmark (not a test): time and peak memory of the Blue Cherry tenant generator.

    .venv/bin/python -m bench.generator                 # 1,000,000 orders into a temporary SQLite file
    .venv/bin/python -m bench.generator --orders 50000 --db /tmp/tenant.sqlite

Prints the record counts, the wall time, orders per second and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sandbox.bluecherry.clock import SandboxClock  # noqa: E402
from sandbox.bluecherry.generator import generate_tenant  # noqa: E402
from sandbox.bluecherry.store import RecordStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=None, help="default: orders / 10")
    parser.add_argument("--styles", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default=None, help="SQLite file (default: a temporary file, deleted after)")
    args = parser.parse_args()
    customers = args.customers if args.customers is not None else max(1, args.orders // 10)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or str(Path(tmp) / "tenant.sqlite")
        store = RecordStore(path)
        clock = SandboxClock("America/New_York", "2026-11-20 12:00:00")
        started = time.perf_counter()
        counts = generate_tenant(
            store,
            clock,
            seed=args.seed,
            customers=customers,
            styles=args.styles,
            orders=args.orders,
            progress=lambda n: print(f"  {n:>9,} orders  {time.perf_counter() - started:7.1f} s", flush=True),
        )
        elapsed = time.perf_counter() - started
        store.close()
        size_mb = Path(path).stat().st_size / 1e6
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024  # Linux reports KiB
    cpu = usage.ru_utime + usage.ru_stime  # on a shared machine CPU time says more than wall time
    print("generated:", ", ".join(f"{k}={v:,}" for k, v in counts.items()))
    print(f"time: {elapsed:.1f} s wall ({args.orders / elapsed:,.0f} orders/s), {cpu:.1f} s CPU")
    print(f"peak RSS: {peak_mb:.0f} MB; database file: {size_mb:.0f} MB")


if __name__ == "__main__":
    main()
