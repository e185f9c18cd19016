"""`bcsync backfill orders|customers --dry-run` as an operator runs it (real `bcsync` processes, the Blue Cherry and
Klaviyo sandboxes over HTTP, a real Redis): a one-screen summary - counts per kind and lane, a few samples - and
every operation only with --verbose; nothing is sent."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.app import create_app as create_klaviyo
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from sync.operations import Operation
from tests.support.fleet import fleet_env

BCSYNC = str(Path(sys.executable).with_name("bcsync"))
BC_KEY = "dry-run-key"


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[tuple[str, str]]:
    bc = ServerThread(create_bluecherry(BlueCherrySandboxConfig(
        subscription_key=BC_KEY, customers=30, styles=3, orders=60, history_days=30,
        start_time="2026-03-02 10:00:00", frozen=True))).start()
    klaviyo = ServerThread(create_klaviyo(KlaviyoSandboxConfig(rate_limits_enabled=False))).start()
    yield bc.url, klaviyo.url
    bc.stop()
    klaviyo.stop()


def run(redis_url: str, sandboxes: tuple[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    bc_url, klaviyo_url = sandboxes
    env = fleet_env(redis_url, klaviyo_url, BCSYNC_BLUECHERRY_BASE_URL=bc_url,
                    BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=BC_KEY) | {"COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    done = subprocess.run([BCSYNC, "backfill", *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.parametrize(("kind", "expect"), [("orders", "event"), ("customers", "profile_upsert")])
def test_dry_run_summarises_and_verbose_lists_everything(redis_url: str, sandboxes: tuple[str, str], kind: str,
                                                          expect: str) -> None:
    summary = run(redis_url, sandboxes, kind, "--dry-run")
    out = summary.stdout
    assert "Dry run: would send (nothing sent, nothing recorded)" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:2] == [expect, "batch"]]
    assert len(rows) == 1 and int(rows[0][2].replace(",", "")) > 3, out  # one count line per kind and lane
    assert not any(line.lstrip().startswith("{") for line in out.splitlines())  # no JSON dump
    assert all(len(line.rstrip()) <= 80 for line in out.splitlines()), out
    assert len(out.splitlines()) < 40, out  # one screen, whatever the tenant's size

    verbose = run(redis_url, sandboxes, kind, "--dry-run", "--verbose")
    ops = [Operation.model_validate(json.loads(line)) for line in verbose.stdout.splitlines()]  # stdout: only JSON
    assert sum(1 for op in ops if op.kind == expect) == int(rows[0][2].replace(",", ""))
    assert "Dry run: would send" in verbose.stderr

    state = httpx.get(f"{sandboxes[1]}/_sandbox/state", timeout=10).json()
    assert state["profiles"] == {} and not state.get("events")  # nothing sent
