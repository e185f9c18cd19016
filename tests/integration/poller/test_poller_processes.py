"""Real poller processes: SIGKILL mid-page and restart; two pollers and the lock; graceful SIGTERM."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.poller.conftest import Sandbox
from tests.support.paths import REPO_ROOT
from tests.support.poller import emitted

pytestmark = pytest.mark.integration
ROOT = REPO_ROOT
TTL = 3


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Procs:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, redis_url: str, bc_url: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.tmp / f"poller-{len(self.started)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.poller.run_poller", redis_url, bc_url, str(TTL)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.started.append((proc, log))
        return proc, log

    def stop_all(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def counts(client: redis.Redis) -> collections.Counter[str]:
    return collections.Counter(e["key"] for e in emitted(client))


def test_sigkill_mid_page_and_restart_loses_and_doubles_nothing(
    sandbox: Sandbox, redis_url: str, redis_client: redis.Redis, procs: Procs
) -> None:
    sandbox.apply({"op": "burst", "resource": "customer", "count": 1000})
    everyone = sandbox.customer_codes()
    sandbox.faults(slow_rate=1.0, slow_seconds=0.3)  # every page takes a while: room to kill mid-read
    first, _ = procs.start(redis_url, sandbox.url)
    wait_for(lambda: redis_client.llen("bcsync-test:emitted") >= 200, 60, "the first pages")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    partial = redis_client.llen("bcsync-test:emitted")
    assert partial < len(everyone)  # really killed mid-read
    second, log = procs.start(redis_url, sandbox.url)
    wait_for(lambda: set(counts(redis_client)) >= everyone, 120, "every customer")
    os.kill(second.pid, signal.SIGTERM)
    assert second.wait(60) == 0
    assert "stopped cleanly" in log.read_text()
    seen = counts(redis_client)
    assert set(seen) == everyone and set(seen.values()) == {1}


def test_two_pollers_one_works_the_other_takes_over_after_a_kill(
    sandbox: Sandbox, redis_url: str, redis_client: redis.Redis, procs: Procs
) -> None:
    a, log_a = procs.start(redis_url, sandbox.url)
    b, log_b = procs.start(redis_url, sandbox.url)

    def holders() -> list[tuple[subprocess.Popen[bytes], Path]]:
        return [(p, log) for p, log in ((a, log_a), (b, log_b)) if "lock acquired" in log.read_text()]

    wait_for(lambda: len(holders()) >= 1, 30, "one poller to take the lock")
    time.sleep(TTL)  # give the other every chance to (wrongly) take it too
    assert len(holders()) == 1
    active, _ = holders()[0]
    waiting, waiting_log = (b, log_b) if active is a else (a, log_a)
    sandbox.apply({"op": "create_customer", "customer": "BEFORE"})
    wait_for(lambda: "BEFORE" in counts(redis_client), 30, "the active poller to emit")
    os.kill(active.pid, signal.SIGKILL)
    active.wait(10)
    killed_at = time.monotonic()
    wait_for(lambda: "lock acquired" in waiting_log.read_text(), TTL + 30, "the waiting poller to take over")
    took = time.monotonic() - killed_at
    sandbox.apply({"op": "create_customer", "customer": "AFTER"})
    wait_for(lambda: "AFTER" in counts(redis_client), 30, "the new active poller to emit")
    assert set(counts(redis_client).values()) == {1}
    print(f"takeover after {took:.2f}s (lock expiry {TTL}s)")
    assert waiting.poll() is None
