"""`bcsync flower` is safe by default: loopback unless told otherwise, never without a real password (none, a
published example or a short one is refused in one line), and `.env.example` carries no usable password."""

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
from dotenv import dotenv_values

from sandbox.server import free_port
from tests.support.paths import REPO_ROOT
from workers.flower import refusal

BCSYNC = str(Path(sys.executable).with_name("bcsync"))
GOOD_PASSWORD = "correct-horse-battery"


def _env(redis_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
    return env | {"BCSYNC_REDIS_URL": redis_url, "BCSYNC_KEY_PREFIX": "flowertest", **settings}


def _refused(redis_url: str, tmp_path: Path, *args: str, **settings: str) -> str:
    done = subprocess.run([BCSYNC, *args], env=_env(redis_url, **settings), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize(("settings", "says"), [
    ({}, "without credentials"),
    ({"BCSYNC_FLOWER_PASSWORD": "change-me"}, "published example password"),
    ({"BCSYNC_FLOWER_PASSWORD": "Admin", "BCSYNC_FLOWER_USER": "admin"}, "published example password"),
    ({"BCSYNC_FLOWER_PASSWORD": "short-pw"}, "8 characters, at least 12"),
    ({"BCSYNC_FLOWER_PASSWORD": GOOD_PASSWORD, "BCSYNC_FLOWER_USER": ""}, "without credentials"),
])
def test_flower_refuses_no_example_or_weak_credentials(redis_url: str, tmp_path: Path, settings: dict[str, str],
                                                       says: str) -> None:
    assert says in _refused(redis_url, tmp_path, "flower", "--port", str(free_port()), **settings)


def test_a_non_loopback_bind_without_credentials_is_refused_and_says_so(redis_url: str, tmp_path: Path) -> None:
    line = _refused(redis_url, tmp_path, "flower", "--address", "0.0.0.0")
    assert "on 0.0.0.0 (not loopback" in line and "without credentials" in line
    line = _refused(redis_url, tmp_path, "flower", BCSYNC_FLOWER_ADDRESS="10.1.2.3",
                    BCSYNC_FLOWER_PASSWORD="change-me")
    assert "on 10.1.2.3 (not loopback" in line


def test_bcsync_run_refuses_before_starting_anything(redis_url: str, tmp_path: Path) -> None:
    assert "--no-flower" in _refused(redis_url, tmp_path, "run")


def test_env_example_carries_no_usable_password() -> None:
    example = dotenv_values(REPO_ROOT / ".env.example")
    assert example["BCSYNC_FLOWER_ADDRESS"] == "127.0.0.1"
    assert refusal("127.0.0.1", str(example["BCSYNC_FLOWER_USER"]), str(example["BCSYNC_FLOWER_PASSWORD"] or ""))


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on `port` (/proc/net/tcp and tcp6, hex)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture
def flower(redis_url: str, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen([BCSYNC, "flower", "--port", str(port)], cwd=tmp_path, start_new_session=True,
                               env=_env(redis_url, BCSYNC_FLOWER_USER="ops", BCSYNC_FLOWER_PASSWORD=GOOD_PASSWORD),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1.0)
                break
            except httpx.HTTPError:
                assert process.poll() is None, "flower exited"
                time.sleep(0.1)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_flower_listens_on_loopback_only_behind_basic_auth(flower: int) -> None:
    assert _listening_addresses(flower) == {"0100007F"}  # 127.0.0.1, nothing else (not 0.0.0.0 or ::)
    url = f"http://127.0.0.1:{flower}/"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, auth=("ops", "wrong-password-x"), timeout=10).status_code == 401
    assert httpx.get(url, auth=("ops", GOOD_PASSWORD), timeout=10).status_code == 200
