"""`bcsync health beat|poller|worker` as a container health check runs it: against a real Redis, exit 0 when
healthy, 1 when not, one line saying why. The exit codes are checked on real `bcsync` processes; the cases in
between on the same command run in this process (each `bcsync` start costs ~2 s)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import typer
from typer.testing import CliRunner, Result

from config.settings import reload_settings
from state.beat import BeatHeartbeat
from state.factory import reset_stores
from state.keys import RedisKeys
from state.poller_health import PollerHealth
from workers.health import health as health_command

BCSYNC = str(Path(sys.executable).with_name("bcsync"))
PREFIX = "healthtest"


def env(redis_url: str) -> dict[str, str]:
    return {**os.environ, "BCSYNC_REDIS_URL": redis_url, "BCSYNC_KEY_PREFIX": PREFIX, "TERM": "dumb",
            "NO_COLOR": "1"}


def bcsync_health(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BCSYNC, "health", *args], env=env(redis_url), capture_output=True, text=True, timeout=60)


@pytest.fixture
def health(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """The health command in this process, with the test's Redis and prefix."""
    monkeypatch.setenv("BCSYNC_REDIS_URL", redis_url)
    monkeypatch.setenv("BCSYNC_KEY_PREFIX", PREFIX)
    reload_settings()
    reset_stores()
    app = typer.Typer()
    app.command()(health_command)
    yield lambda *args: CliRunner().invoke(app, list(args))
    monkeypatch.undo()
    reload_settings()
    reset_stores()


def test_beat_exit_codes_of_the_real_command(redis_url: str, redis_client: redis.Redis) -> None:
    never = bcsync_health("beat", redis_url=redis_url)
    assert never.returncode == 1 and "no beat has ticked" in never.stderr
    BeatHeartbeat(redis_client, PREFIX).tick(time.time())
    fresh = bcsync_health("beat", redis_url=redis_url)
    assert fresh.returncode == 0 and "beat: healthy" in fresh.stdout


def test_beat_too_long_silent(health: Callable[..., Result], redis_client: redis.Redis) -> None:
    BeatHeartbeat(redis_client, PREFIX).tick(time.time() - 600)
    stale = health("beat")
    assert stale.exit_code == 1 and "more than 120 s" in stale.output  # BCSYNC_STALE_AFTER_SECONDS
    assert health("beat", "--max-age", "900").exit_code == 0


def test_poller_exit_codes_of_the_real_command(redis_url: str, redis_client: redis.Redis) -> None:
    PollerHealth(redis_client, PREFIX).cycle("customer", held=False, records=3, now=time.time())
    no_lock = bcsync_health("poller", redis_url=redis_url)
    assert no_lock.returncode == 1 and "no poller holds the poller lock" in no_lock.stderr
    redis_client.set(RedisKeys(PREFIX).poller_lock, "token", ex=30)  # what redis-py's lock holds while it runs
    ok = bcsync_health("poller", redis_url=redis_url)
    assert ok.returncode == 0 and "last poll cycle (customer)" in ok.stdout


def test_poller_cases(health: Callable[..., Result], redis_client: redis.Redis) -> None:
    redis_client.set(RedisKeys(PREFIX).poller_lock, "token", ex=30)
    cycles = PollerHealth(redis_client, PREFIX)
    not_yet = health("poller")
    assert not_yet.exit_code == 1 and "has not finished a poll cycle" in not_yet.output
    cycles.cycle("customer", held=False, now=time.time())
    cycles.cycle("order", held=True, error="404 Not Found", error_kind="not_found", now=time.time())
    failing = health("poller")  # alive and cycling: read errors are `bcsync status`'s business, and named
    assert failing.exit_code == 0 and "read errors: order" in failing.output
    redis_client.delete(cycles.key)
    cycles.cycle("customer", held=False, now=time.time() - 600)
    stale = health("poller")
    assert stale.exit_code == 1 and "more than 120 s" in stale.output


def test_an_unreachable_redis_is_unhealthy() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = bcsync_health("poller", redis_url=f"redis://127.0.0.1:{port}/0")
    assert out.returncode == 1 and "Traceback" not in out.stderr


@pytest.fixture
def fast_worker(redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([BCSYNC, "worker", "--lane", "fast", "--concurrency", "1"], env=env(redis_url),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_worker(redis_url: str, fast_worker: subprocess.Popen[bytes]) -> None:
    assert bcsync_health("worker", redis_url=redis_url).returncode == 2  # neither --lane nor --node
    batch = bcsync_health("worker", "--lane", "batch", "--timeout", "1", redis_url=redis_url)
    assert batch.returncode == 1 and f"batch@{socket.gethostname()} did not answer" in batch.stderr
    for _ in range(60):  # until the fast worker has started (no time asserted: at most 60 tries)
        fast = bcsync_health("worker", "--lane", "fast", "--timeout", "1", redis_url=redis_url)
        if fast.returncode == 0:
            break
        assert fast_worker.poll() is None, "the worker exited"
    assert fast.returncode == 0 and "answered" in fast.stdout, fast.stderr
