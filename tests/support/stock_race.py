"""Two workers storing rows of one SKU at once, made deterministic: one worker pauses right after reading the
SKU's stored stock rows, until the test lets it go.

A worker that imports this module (`--include tests.support.stock_race`) wraps the Redis client's `hget` and
`hgetall` (for plain calls and for pipelines, whatever code reads the rows: a read-then-write or a WATCHed
transaction). Once the test has set `<prefix>:test:stock-race:armed`, the first read of a `<prefix>:stock:rows:`
key in the fleet sets `<prefix>:test:stock-race:paused` (only that one reader pauses) and waits until
`<prefix>:test:stock-race:go` exists (at most `MAX_PAUSE` seconds, under the task time limits), then returns
what it read: whatever it writes next is based on a read that other workers may have overtaken meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from state.factory import stores

MAX_PAUSE = 3.0


def race_key(name: str) -> str:
    return f"{stores().settings.key_prefix}:test:stock-race:{name}"


def _pause_after_rows_read(name: Any) -> None:
    if ":stock:rows:" not in str(name):
        return
    client = stores().redis
    if not client.exists(race_key("armed")) or not client.set(race_key("paused"), "1", nx=True):
        return
    deadline = time.monotonic() + MAX_PAUSE
    while not client.exists(race_key("go")) and time.monotonic() < deadline:
        time.sleep(0.02)


def _pausing(read: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(self: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
        value = read(self, name, *args, **kwargs)
        _pause_after_rows_read(name)
        return value

    return wrapped


redis.Redis.hget = _pausing(redis.Redis.hget)  # type: ignore[method-assign]
redis.Redis.hgetall = _pausing(redis.Redis.hgetall)  # type: ignore[method-assign]
