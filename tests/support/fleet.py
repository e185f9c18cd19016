"""Real worker processes for integration tests: started as `bcsync worker --lane L`, stopped by pid."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from config.redis import taking_key

ROOT = Path(__file__).resolve().parents[2]
# The Blue Cherry sandbox's tenant dialects (`BlueCherrySandboxConfig.dialect`; docs/sandbox.md, "Blue Cherry
# tenant dialects") and the mapping file a fleet reads each with (None: the documented defaults).
DIALECTS = ("default", "ibmi")
DIALECT_MAPPINGS: dict[str, Path | None] = {"default": None, "ibmi": ROOT / "config" / "examples" / "ibmi.toml"}
# An end-to-end module (or one test) runs on every dialect with this one mark: the `dialect` fixture
# (tests/conftest.py; "default" unless parametrised) takes each in turn, one module-scoped fleet per dialect.
both_dialects = pytest.mark.parametrize("dialect", DIALECTS, indirect=True, scope="module")


def dialect_mapping(overrides: str = "", dialect: str = "default") -> str:
    """The TOML of a tenant mapping for a sandbox speaking `dialect`: the dialect's own mapping file with a test's
    `overrides` (TOML text, e.g. poll intervals or lifecycle filters) laid over it table by table, as the fleet
    lays a file over its defaults - but a predicate (a table with a `field`, e.g. `shipped_when`) is replaced
    whole. For `default` it is `overrides` itself."""
    if dialect not in DIALECT_MAPPINGS:
        raise ValueError(f"unknown dialect '{dialect}' (known: {', '.join(DIALECT_MAPPINGS)})")
    base = DIALECT_MAPPINGS[dialect]
    if base is None:
        return overrides
    return toml_text(_laid_over(tomllib.loads(base.read_text(encoding="utf-8")), tomllib.loads(overrides)))


def _laid_over(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "field" not in value:
            out[key] = _laid_over(out[key], value)
        else:
            out[key] = value
    return out


def toml_text(document: dict[str, Any]) -> str:
    """A TOML document of tables, strings, numbers, booleans and lists (what a mapping holds)."""
    lines: list[str] = []

    def table(path: tuple[str, ...], values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        if path and scalars:
            lines.append(f"\n[{'.'.join(_toml_key(p) for p in path)}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items())
        for key, value in values.items():
            if isinstance(value, dict):
                table((*path, key), value)

    table((), document)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def wait_for(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.1,
             message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def pending_work(client: redis.Redis, prefix: str, extra_lists: tuple[str, ...] = ()) -> int:
    """Messages still somewhere in the fleet: on a lane, unacknowledged, or waiting in the delayed schedule."""
    pending = sum(int(client.llen(f"{prefix}:broker:{lane}")) + int(client.llen(taking_key(f"{prefix}:broker:{lane}")))
                  for lane in ("fast", "default", "batch"))
    pending += int(client.hlen(f"{prefix}:broker:unacked"))
    pending += int(client.zcard(f"{prefix}:delayed:due")) + int(client.zcard(f"{prefix}:delayed:inflight"))
    return pending + sum(int(client.llen(f"{prefix}:{name}")) for name in extra_lists)


def wait_idle(client: redis.Redis, prefix: str, timeout: float = 60.0, extra_lists: tuple[str, ...] = ()) -> None:
    """Until nothing is pending three samples in a row (a task in flight may still publish follow-ups)."""
    quiet = [0]

    def settled() -> bool:
        quiet[0] = quiet[0] + 1 if pending_work(client, prefix, extra_lists) == 0 else 0
        return quiet[0] >= 3

    wait_for(settled, timeout, interval=0.2, message="the fleet to be idle")


def fleet_env(redis_url: str, klaviyo_url: str, dialect: str = "default", **overrides: str) -> dict[str, str]:
    """The environment of fleet processes. A Blue Cherry sandbox speaking another `dialect` is read with that
    dialect's mapping file, unless `overrides` name one (make it with `dialect_mapping`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")}
    env.update({
        "BCSYNC_REDIS_URL": redis_url,
        "BCSYNC_KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "BCSYNC_KLAVIYO_BASE_URL": klaviyo_url,
        "BCSYNC_KLAVIYO_API_KEY": "pk_test_0123456789abcdef",
        "BCSYNC_VISIBILITY_TIMEOUT_SECONDS": "8",
        "BCSYNC_REDELIVERY_CHECK_SECONDS": "1",
        "BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS": "4",
        "BCSYNC_TASK_TIME_LIMIT_SECONDS": "6",
        "BCSYNC_DELAYED_DRAIN_INTERVAL_SECONDS": "0.2",
        "BCSYNC_BACKOFF_BASE_SECONDS": "0.2",
        "BCSYNC_BACKOFF_MAX_SECONDS": "2",
        "BCSYNC_BULK_MAX_WAIT_SECONDS": "1",  # a bulk buffer's tail waits a second for more, not five
        "PYTHONUNBUFFERED": "1",
    })
    if dialect not in DIALECT_MAPPINGS:
        raise ValueError(f"unknown dialect '{dialect}' (known: {', '.join(DIALECT_MAPPINGS)})")
    mapping = DIALECT_MAPPINGS[dialect]
    if mapping is not None:
        env["BCSYNC_MAPPING_FILE"] = str(mapping)
    env.update(overrides)
    return env


@dataclass
class WorkerProcess:
    lane: str
    env: dict[str, str]
    concurrency: int = 2  # the fleet runs every lane with more than one pool process; so do the tests
    include: tuple[str, ...] = ()  # extra task modules (test tasks that fail on purpose), via Celery itself
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="bcsync-worker-", suffix=".log")[1]))

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        out = self.log.open("ab")
        command = [sys.executable, "-m", "workers.cli", "worker", "--lane", self.lane,
                   "--concurrency", str(self.concurrency), "--loglevel", "INFO"]
        if self.include:
            command = [sys.executable, "-m", "celery", "-A", "config.celery:app", "worker", "-Q", self.lane,
                       "-n", f"{self.lane}@%h", "--concurrency", str(self.concurrency), "--loglevel", "INFO",
                       "--without-gossip", "--without-mingle", "--include", ",".join(self.include)]
        process = subprocess.Popen(
            command,
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.process = process
        out.close()
        wait_for(lambda: " ready." in self.log.read_text(errors="replace") or process.poll() is not None,
                 timeout, message=f"worker {self.lane} to be ready")
        if process.poll() is not None:
            raise RuntimeError(f"worker {self.lane} exited:\n{self.log.read_text(errors='replace')[-3000:]}")
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pool_children(self) -> list[int]:
        return [c.pid for c in psutil.Process(self.pid).children(recursive=False)]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL the worker and its pool children at once, as a lost machine or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        else:
            # the main process is gone (a test killed it): reap its orphaned pool children too
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.unlink(missing_ok=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _reset_caches() -> None:
    # per call: only the in-process producer tests configure the test process like the workers
    import config.mapping  # noqa: PLC0415
    import config.settings  # noqa: PLC0415
    import delivery.runtime  # noqa: PLC0415

    config.settings.reload_settings()
    config.mapping.get_mapping.cache_clear()
    delivery.runtime.reset_runtime()


@contextmanager
def klaviyo_applying_jobs_on_demand() -> Iterator[tuple[str, Any]]:
    """A Klaviyo sandbox on loopback (no rate limits) whose bulk jobs apply only when the test advances them:
    its URL and its state (`KlaviyoSandbox`)."""
    from sandbox.klaviyo.app import create_app  # noqa: PLC0415
    from sandbox.klaviyo.config import KlaviyoSandboxConfig  # noqa: PLC0415
    from sandbox.server import ServerThread  # noqa: PLC0415

    app = create_app(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=3600))
    with ServerThread(app) as server:
        yield server.url, app.state.sandbox


@contextmanager
def worker_runtime(redis_url: str, klaviyo_url: str, **env: str) -> Iterator[Any]:
    """This process configured like a worker of a fleet on `redis_url` and `klaviyo_url` (`env`: more BCSYNC_
    settings), and its delivery runtime, for tests that run the workers' functions here in a chosen order."""
    from config.celery import make_app  # noqa: PLC0415
    from config.settings import Settings  # noqa: PLC0415
    from delivery.runtime import runtime  # noqa: PLC0415

    environment = fleet_env(redis_url, klaviyo_url, **env)
    settings = Settings.model_validate({k[len("BCSYNC_"):].lower(): v for k, v in environment.items()
                                        if k.startswith("BCSYNC_")})
    with configured_like(environment, make_app(settings)):
        yield runtime()


@contextmanager
def configured_like(env: dict[str, str], app: object) -> Iterator[None]:
    """This test process configured like the fleet's workers (`env`'s BCSYNC_ settings, its Celery `app`), so
    in-process producers - the poller's emit, `delivery.publish`, the CLI - use the fleet's Redis and never a
    machine-wide one. Everything is restored, and the caches forgotten, on leaving."""
    import config.celery  # noqa: PLC0415
    import delivery.publish  # noqa: PLC0415

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("BCSYNC_")]:
            mp.delenv(key)
        for key, value in env.items():
            if key.startswith("BCSYNC_"):
                mp.setenv(key, value)
        _reset_caches()
        mp.setattr(config.celery, "app", app)
        mp.setattr(delivery.publish, "app", app)
        try:
            yield
        finally:
            mp.undo()
            _reset_caches()
