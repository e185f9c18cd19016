"""Run one real buffer flush in a process of its own, optionally killed between claim and publish.

    python -m tests.support.crash_flush orders|stock crash|normal [--reclaim-after SECONDS]

Redis and the key prefix come from the environment (``BCSYNC_REDIS_URL``, ``BCSYNC_KEY_PREFIX``). `orders`
runs `flows.orders.flush_bulk_buffer` over the order bulk buffer, `stock` runs `flows.stock.flush` (the
pending stock figures and the catalog outbox). In `crash` mode the flow's publish function SIGKILLs the
process: the flush has claimed its items and published nothing. `--reclaim-after` sets the claims' reclaim
age (0: a normal flush takes back every open claim first). `queued_operations` reads what reached a lane.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from typing import Any, NoReturn

import redis

from delivery.runtime import runtime
from flows import orders, stock
from state import claims
from tests.support.fleet import ROOT


def die(*_args: Any, **_kwargs: Any) -> NoReturn:
    os.kill(os.getpid(), signal.SIGKILL)
    raise SystemExit(137)  # not reached


def run(target: str, mode: str, env: dict[str, str], reclaim_after: float | None = None,
        timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run the flush in a child process (a SIGKILLed one returns -9)."""
    args = [sys.executable, "-m", "tests.support.crash_flush", target, mode]
    if reclaim_after is not None:
        args += ["--reclaim-after", str(reclaim_after)]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def queued_operation_dicts(client: redis.Redis, queue_key: str) -> list[dict[str, Any]]:
    """Every operation (its wire dict) of the delivery messages waiting in a lane's broker list, in order."""
    ops: list[dict[str, Any]] = []
    for raw in client.lrange(queue_key, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ops += args[0]["operations"]
    return ops


def queued_operations(client: redis.Redis, queue_key: str) -> Counter[str]:
    """Operation keys of every delivery message waiting in a lane's broker list, counted."""
    return Counter(op["key"] for op in queued_operation_dicts(client, queue_key))


def main(argv: list[str]) -> None:
    target, mode = argv[0], argv[1]
    if "--reclaim-after" in argv:
        claims.RECLAIM_AFTER = float(argv[argv.index("--reclaim-after") + 1])
    if target == "orders":
        if mode == "crash":
            orders.submit = die  # default_context() hands the flow this module's `submit`
        print(orders.flush_bulk_buffer(orders.default_context()))
    elif target == "stock":
        if mode == "crash":
            stock.publish_envelopes = die
        print(stock.flush(runtime()))
    else:
        raise SystemExit(f"unknown target {target!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
