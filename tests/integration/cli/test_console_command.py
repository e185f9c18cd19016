"""`bcsync console` as an operator starts it: where it may listen, one line for every refusal, and read-only
without users (a real process, real Redis; the browser tests cover the signed-in pages)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.server import free_port
from workers.console.auth import verify_password

BCSYNC = str(Path(sys.executable).with_name("bcsync"))


def _env(redis_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
    return env | {"BCSYNC_REDIS_URL": redis_url, "BCSYNC_KEY_PREFIX": "consolecli", **settings}


@pytest.mark.parametrize(("args", "settings", "says"), [
    (["console", "--address", "0.0.0.0"], {}, "refusing to serve on 0.0.0.0"),
    (["console"], {"BCSYNC_CONSOLE_ADDRESS": "10.1.2.3"}, "refusing to serve on 10.1.2.3"),
    (["console"], {"BCSYNC_CONSOLE_USERS": "ann:viewer:hunter2"}, "must be a hash"),
    (["run", "--no-flower"], {"BCSYNC_CONSOLE_ADDRESS": "0.0.0.0"}, "or run with --no-console"),
])
def test_refusals_are_one_line_and_exit_2(redis_url: str, args: list[str], settings: dict[str, str],
                                          says: str) -> None:
    done = subprocess.run([BCSYNC, *args], env=_env(redis_url, **settings), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and says in done.stderr, done.stderr
    assert "hunter2" not in done.stderr


@pytest.fixture
def read_only_console(redis_url: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([BCSYNC, "console", "--port", str(port)], env=_env(redis_url),
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # until it answers (at most 300 tries)
            try:
                httpx.get(f"{url}/healthz", timeout=1.0)
                break
            except httpx.HTTPError:
                assert process.poll() is None, "the console exited"
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def test_without_users_it_serves_loopback_read_only(read_only_console: str) -> None:
    with httpx.Client(base_url=read_only_console, timeout=10) as web:
        today = web.get("/")
        assert today.status_code == 200 and "read-only (no users configured)" in today.text
        token = today.text.split('<meta name="csrf" content="')[1].split('"')[0]
        refused = web.post("/dead-letters/requeue", data={"csrf": token, "lane": "fast", "code": "invalid"})
        assert refused.status_code == 403 and "read-only" in refused.text


def test_hash_password_needs_no_redis_and_prints_a_verifiable_hash() -> None:
    unused = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done = subprocess.run([BCSYNC, "console", "--hash-password"], input="a-long-enough-password\n",
                          env=_env(unused), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert verify_password("a-long-enough-password", done.stdout.strip())
    short = subprocess.run([BCSYNC, "console", "--hash-password"], input="short\n", env=_env(unused),
                           capture_output=True, text=True, timeout=60)
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
