"""How fast this machine runs the fleet's kind of Python: a fixed workload, timed, printed with the benchmarks.

CPU milliseconds per event depend on the machine as much as on the code: the same commit measured 2.77 ms per
single event on one 2-core machine and 7.0 on another (bench/compare.py, a day apart; the official SDK loop
in the same runs: 0.32 and 0.78). A benchmark block that prints this yardstick beside its figures can be
compared with one from another machine: divide each by its yardstick.

The workload is what a delivery does most, in pure Python and the fleet's own libraries, with no I/O:
validate 500 operations (pydantic), write them as JSON with the standard library and with orjson, read them
back, hash each. The best of several runs is kept (the least disturbed by other processes).

    .venv/bin/python -m bench.yardstick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import orjson

from sync.operations import Operation

OPERATIONS = 500


def _workload(rows: list[dict[str, object]]) -> int:
    ops = [Operation.model_validate(row) for row in rows]
    text = json.dumps([op.model_dump(mode="json") for op in ops])
    back = json.loads(text)
    raw = orjson.dumps(back)
    return sum(len(hashlib.sha1(orjson.dumps(row)).digest()) for row in orjson.loads(raw))


def rows() -> list[dict[str, object]]:
    return [{"kind": "event", "key": f"event:Placed Order:SO{n}", "lane": "batch", "record": f"order:SO{n}",
             "version": f"2026-12-07T03:00:{n % 60:02d}Z",
             "payload": {"metric": "Placed Order", "profile": {"email": f"shopper{n}@example.com"},
                         "properties": {"OrderId": f"SO{n}", "Items": [{"SKU": f"S{n % 97}-BLK-M", "Quantity": 1}]},
                         "time": "2026-12-07T03:00:00+00:00", "value": 49.5, "unique_id": f"SO{n}"}}
            for n in range(OPERATIONS)]


def yardstick_ms(repeats: int = 7) -> float:
    """The workload's best time over `repeats` runs, in milliseconds (lower: a faster machine)."""
    data = rows()
    _workload(data)  # warm: imports, pydantic's first validation
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        _workload(data)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def describe(ms: float) -> str:
    return f"machine yardstick {ms:.1f} ms (`python -m bench.yardstick`: lower is faster)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(describe(yardstick_ms(args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
