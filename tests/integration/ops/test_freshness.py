"""Freshness end to end, with real processes: a poller reading a Blue Cherry sandbox whose customers change every
second, a fast worker (Sentry on, to a loopback ingest), beat driving the freshness check every second, and the
metrics endpoint. Stopping the poller makes the customer watermark's age cross its threshold: one exception with
its owner, one Sentry message (not one per check), a `bcsync status` line and a metric; restarting the poller
clears them all (the exception resolved)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from config.mapping import ExceptionOwners
from sandbox.bluecherry.app import create_app as bluecherry_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.app import create_app as klaviyo_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread, free_port
from state.exceptions import ExceptionRegister
from state.freshness import FreshnessCrossings
from state.watermarks import WatermarkStore
from tests.integration.ops.sentry_ingest import SentryIngest
from tests.support.fleet import ROOT, WorkerProcess, fleet_env, wait_for

pytestmark = pytest.mark.integration

KEY = "fresh-key"
WATERMARK_MAX_AGE = 4  # seconds; the customers change several times a second while the poller runs


class Process(WorkerProcess):
    """A `bcsync` command as a child process (poller, beat, metrics), stopped by its pid like a worker."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        super().__init__(args[0], env)
        self.args = args

    def start(self, timeout: float = 60.0) -> Process:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "workers.cli", *self.args], cwd=ROOT,
                                            env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def terminate(self) -> None:
        """SIGTERM and wait (the poller finishes its page and releases its lock); the log is kept."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


@pytest.fixture
def world(redis_url: str) -> Iterator[dict]:
    bc = ServerThread(bluecherry_app(BlueCherrySandboxConfig(subscription_key=KEY, customers=5, styles=0, orders=0)))
    klaviyo = ServerThread(klaviyo_app(KlaviyoSandboxConfig(rate_limits_enabled=False)))
    ingest = SentryIngest().start()
    bc.start()
    klaviyo.start()
    mapping = Path(tempfile.mkstemp(prefix="bcsync-fresh-", suffix=".toml")[1])
    mapping.write_text("[resources.customer]\npoll_seconds = 0.5\n")
    port = free_port("127.0.0.1")
    env = fleet_env(
        redis_url, klaviyo.url, BCSYNC_BLUECHERRY_BASE_URL=bc.url, BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=KEY,
        BCSYNC_MAPPING_FILE=str(mapping), BCSYNC_SENTRY_DSN=ingest.dsn, BCSYNC_POLLER_LOCK_TTL_SECONDS="3",
        BCSYNC_FRESHNESS_CHECK_SECONDS="1", BCSYNC_FRESHNESS_CLEAR_AFTER_SECONDS="0",
        BCSYNC_WATERMARK_MAX_AGE_SECONDS=str(WATERMARK_MAX_AGE), BCSYNC_POLLER_READ_MAX_DELAY_SECONDS="3",
        BCSYNC_METRICS_PORT=str(port), TERM="dumb", NO_COLOR="1", COLUMNS="200",
    )
    # the customers change every second from now on: a running poller keeps the watermark young
    rates = {"customers": 0, "consent_changes": 0, "customer_edits": 240, "orders": 0, "confirms": 0, "ships": 0,
             "cancels": 0, "returns": 0, "stock_adjustments": 0}
    httpx.post(f"{bc.url}/_sandbox/live", json={"running": True, "rates": rates}, timeout=10).raise_for_status()
    wait_for(lambda: httpx.get(f"{bc.url}/_sandbox/live", timeout=10).json()["applied"] > 0, 20,
             message="the first live edit")
    started: list[WorkerProcess] = []
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield {"env": env, "started": started, "ingest": ingest, "redis": client, "port": port}
    for process in started:
        process.stop()
    client.close()
    httpx.post(f"{bc.url}/_sandbox/live", json={"running": False}, timeout=10)
    ingest.stop()
    bc.stop()
    klaviyo.stop()
    mapping.unlink(missing_ok=True)


def sentry_messages(ingest: SentryIngest, text: str) -> list[str]:
    found = []
    for header, payload in ingest.items():
        if header.get("type") != "event":
            continue
        event = json.loads(payload)
        message = event.get("message") or (event.get("logentry") or {}).get("message") or ""
        if text in message:
            found.append(message)
    return found


def status(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "workers.cli", "status"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def metric(port: int, name: str, **labels: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.ConnectError:  # `bcsync metrics` still starting
        return None
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return None


def test_a_stopped_poller_crosses_the_watermark_threshold_once_and_its_restart_clears_it(world: dict) -> None:
    env, started, ingest, client, port = (world[k] for k in ("env", "started", "ingest", "redis", "port"))
    prefix = env["BCSYNC_KEY_PREFIX"]
    poller = Process(["poller", "--resource", "customer"], env).start()
    started.append(poller)
    started.append(WorkerProcess("fast", env, 2).start())
    started.append(Process(["beat"], env).start())
    started.append(Process(["metrics"], env).start())
    marks = WatermarkStore(client, prefix)
    crossings = FreshnessCrossings(client, prefix)
    register = ExceptionRegister(client, prefix, ExceptionOwners())

    # healthy: the watermark follows the changes and checks run (beat ticks the check every second) - no crossing
    wait_for(lambda: marks.get("customer") is not None, 30, message="the poller's first watermark")
    wait_for(lambda: metric(port, "bcsync_watermark_age_seconds", resource="customer") is not None, 30,
             message="the metrics endpoint")
    assert crossings.all() == {} and sentry_messages(ingest, "watermark_stale") == []

    poller.terminate()
    wait_for(lambda: ("watermark_age", "customer") in crossings.all(), 30, message="the watermark age to cross")
    record = register.get("watermark_stale", "customer")
    assert record is not None and record.status == "open" and record.owner == "operations"
    assert "watermark age of customer" in record.reason
    wait_for(lambda: sentry_messages(ingest, "watermark_stale customer"), 30, message="the Sentry message")
    first = crossings.all()[("watermark_age", "customer")]
    wait_for(lambda: crossings.all()[("watermark_age", "customer")].at >= first.at + 2, 30,
             message="two more checks while crossed")
    assert len(sentry_messages(ingest, "watermark_stale customer")) == 1, "one message per crossing, not per check"
    shown = status(env)
    assert re.search(r"freshness thresholds crossed: .*watermark_stale customer since", shown), shown
    assert "poller_read_stale customer" in shown  # its last successful read grew old too
    assert metric(port, "bcsync_freshness_over", check="watermark_age", subject="customer",
                  type="watermark_stale") == 1.0
    assert (metric(port, "bcsync_watermark_age_seconds", resource="customer") or 0) > WATERMARK_MAX_AGE

    restarted = Process(["poller", "--resource", "customer"], env).start()
    started.append(restarted)
    wait_for(lambda: register.get("watermark_stale", "customer").status == "resolved", 30,  # type: ignore[union-attr]
             message="the crossing to clear")
    wait_for(lambda: crossings.all() == {}, 30, message="every crossing cleared")
    assert "freshness thresholds crossed: none" in status(env)
    assert metric(port, "bcsync_freshness_over", check="watermark_age", subject="customer",
                  type="watermark_stale") == 0.0
    assert len(sentry_messages(ingest, "watermark_stale customer")) == 1
