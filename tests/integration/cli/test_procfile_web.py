"""The Procfile's `web` process as a platform runs it (`sh -c` with `$PORT` set): the operations console on $PORT
on every address, behind sign-in with the users given in the environment; refused in one line without users."""

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
from workers.console.auth import hash_password

BIN = str(Path(sys.executable).parent)
PASSWORD = "platform-config-var-pw"
USERS = f"ops:admin:{hash_password(PASSWORD)}"


def _web_command() -> str:
    lines = dict(line.split(":", 1) for line in (REPO_ROOT / "Procfile").read_text().splitlines() if line.strip())
    return lines["web"].strip()


def _env(redis_url: str, port: int, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
    return env | {"PATH": f"{BIN}:{env.get('PATH', '')}", "PORT": str(port), "BCSYNC_REDIS_URL": redis_url,
                  "BCSYNC_KEY_PREFIX": "webtest", **settings}


def test_web_without_users_is_refused(redis_url: str, tmp_path: Path) -> None:
    done = subprocess.run(["sh", "-c", _web_command()], env=_env(redis_url, free_port()), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "0.0.0.0" in done.stderr and "without users" in done.stderr


def test_web_serves_the_console_on_port_behind_sign_in(redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(["sh", "-c", f"exec {_web_command()}"], cwd=tmp_path, start_new_session=True,
                               env=_env(redis_url, port, BCSYNC_CONSOLE_USERS=USERS),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # until the console answers (at most 300 tries)
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
                break
            except httpx.HTTPError:
                assert process.poll() is None, "the console exited"
                time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as web:
            assert web.get("/").headers["location"].startswith("/signin")  # nothing without signing in
            token = web.get("/signin").text.split('name="csrf" value="')[1].split('"')[0]
            signed = web.post("/signin", data={"csrf": token, "user": "ops", "password": PASSWORD, "next": "/"})
            assert signed.status_code == 303 and signed.headers["location"] == "/"
            assert "Today" in web.get("/").text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
