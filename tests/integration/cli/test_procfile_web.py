"""The Procfile's `web` process as a platform runs it (`sh -c` with `$PORT` set): Flower on $PORT on every
address, behind the basic auth given in the environment; refused in one line without credentials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sandbox.server import free_port
from tests.support.paths import REPO_ROOT

BIN = str(Path(sys.executable).parent)
PASSWORD = "platform-config-var-pw"


def _web_command() -> str:
    lines = dict(line.split(":", 1) for line in (REPO_ROOT / "Procfile").read_text().splitlines() if line.strip())
    return lines["web"].strip()


def _env(redis_url: str, port: int, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
    return env | {"PATH": f"{BIN}:{env.get('PATH', '')}", "PORT": str(port), "BCSYNC_REDIS_URL": redis_url,
                  "BCSYNC_KEY_PREFIX": "webtest", **settings}


def test_web_without_credentials_is_refused(redis_url: str, tmp_path: Path) -> None:
    done = subprocess.run(["sh", "-c", _web_command()], env=_env(redis_url, free_port()), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "0.0.0.0" in done.stderr and "without credentials" in done.stderr


def test_web_serves_flower_on_port_behind_the_environments_credentials(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(["sh", "-c", f"exec {_web_command()}"], cwd=tmp_path, start_new_session=True,
                               env=_env(redis_url, port, BCSYNC_FLOWER_USER="ops", BCSYNC_FLOWER_PASSWORD=PASSWORD),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # until Flower answers (at most 300 tries)
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1.0)
                break
            except httpx.HTTPError:
                assert process.poll() is None, "flower exited"
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(url, timeout=10).status_code == 401
        assert httpx.get(url, auth=("ops", PASSWORD), timeout=10).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
