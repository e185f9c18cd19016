"""Stock first load at scale (issue 15, complete figures only): the test of tests/integration/stock/test_first_load.py
on a bigger tenant. Every SKU has rows in three sellable warehouses, the third written last (so pages apart from
the other two), about a third of those negative; every row is its own message on the fast lane; workers are real
processes (fast lane at --fast, batch at --batch), beat runs, the poller runs one cycle in this process.

    .venv/bin/python -m bench.stock_first_load                     # 300 styles: about 4,600 SKUs, 15,000 rows
    .venv/bin/python -m bench.stock_first_load --styles 40 --json

Printed: SKUs and rows, seconds from the poller's start until every variant in Klaviyo holds its truth and the
fleet is idle, variants wrong at the end, and figures sent that were not the variant's truth (a figure of part
of a SKU's warehouses; a creation carrying 0 before any figure existed is not counted). Exit status 1 when any
variant is wrong or any such figure was sent, or the load did not settle within --timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

from sandbox.redis_server import PrivateRedis
from tests.support.stock_load import SELLABLE, stock_load_fleet


@dataclass
class Result:
    styles: int
    skus: int
    rows: int
    fast_concurrency: int
    seconds: float | None  # None: not settled within the timeout
    wrong: int
    partial_writes: int
    writes: int


def run(styles: int, fast: int, batch: int, timeout: float) -> Result:
    server = PrivateRedis.start()
    try:
        with stock_load_fleet(server.url, styles=styles, fast=fast, batch=batch) as fleet:
            truth = fleet.truth()
            rows = sum(1 for row in fleet.records("inventory") if row["location"] in SELLABLE)
            started = time.monotonic()
            fleet.poll()
            seconds: float | None = None
            while time.monotonic() - started < timeout:
                quantities = fleet.quantities()
                if fleet.settled() and all(quantities.get(k) == q for k, q in truth.items()):
                    seconds = round(time.monotonic() - started, 1)
                    break
                time.sleep(0.5)
            quantities = fleet.quantities()
            return Result(styles, len(truth), rows, fast, seconds,
                          sum(1 for k, q in truth.items() if quantities.get(k) != q),
                          len(fleet.partial_writes(truth)), len(fleet.writes()))
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--styles", type=int, default=300)
    parser.add_argument("--fast", type=int, default=4, help="fast-lane worker concurrency")
    parser.add_argument("--batch", type=int, default=2, help="batch-lane worker concurrency")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.styles, args.fast, args.batch, args.timeout)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        print(f"{result.skus} SKUs, {result.rows} sellable rows, fast lane at concurrency {result.fast_concurrency}")
        print(f"settled in {result.seconds} s" if result.seconds is not None else "did not settle")
        print(f"variants wrong: {result.wrong}; figures sent that were not the truth: {result.partial_writes} "
              f"(of {result.writes} stock writes)")
    return 0 if result.seconds is not None and not result.wrong and not result.partial_writes else 1


if __name__ == "__main__":
    sys.exit(main())
