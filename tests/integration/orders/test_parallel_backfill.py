"""`bcsync backfill customers|orders --workers N` (issue 18): the range split by last_mod across processes, each
slice resumable. Over one generated Blue Cherry tenant, three runs with their own Redis prefix, Klaviyo sandbox and
real batch worker: one process, two processes, and two processes (orders killed mid-run, then resumed). Klaviyo must
end with the same profiles, events and aggregates each time, every event once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.app import create_app as create_klaviyo
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from tests.support.fleet import WorkerProcess, fleet_env, wait_for, wait_idle
from tests.support.paths import REPO_ROOT
from tests.support.redis_server import PrivateRedis

pytestmark = pytest.mark.integration
KEY = "parallel-backfill-key"
PAGE = 10  # small pages: many of them per slice, and a kill lands mid-run
BULK_LISTS = ("backfill:orders:bulk", "backfill:orders:bulk:profile_upsert")
RESOURCES = ("order", "pick", "invoice", "creditmemo")


@pytest.fixture(scope="module")
def erp() -> Iterator[ServerThread]:
    config = BlueCherrySandboxConfig(subscription_key=KEY, customers=30, styles=6, orders=160,
                                     start_time="2026-03-02 10:00:00", frozen=True)
    with ServerThread(create_bluecherry(config)) as bc:
        yield bc


@pytest.fixture(scope="module")
def mapping_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parallel") / "mapping.toml"
    path.write_text("".join(f"[resources.{r}]\npage_size = {PAGE}\n" for r in RESOURCES), encoding="utf-8")
    return path


@dataclass
class Run:
    env: dict[str, str]
    klaviyo: ServerThread
    redis: redis.Redis

    @property
    def prefix(self) -> str:
        return self.env["BCSYNC_KEY_PREFIX"]

    def backfill(self, *args: str, what: str = "orders") -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "workers.cli", "backfill", what, *args], cwd=REPO_ROOT,
                                env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def customers(self, *args: str) -> None:
        """The customer master first, as on a go-live: the aggregates update profiles that exist."""
        finished(self.backfill(*args, what="customers"))
        wait_idle(self.redis, self.prefix, timeout=120)

    def state(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.klaviyo.url}/_sandbox/state", timeout=60).json())

    def settled(self) -> dict[str, Any]:
        """Klaviyo's state once the fleet is idle and its event count stopped moving."""
        wait_idle(self.redis, self.prefix, timeout=120, extra_lists=BULK_LISTS)
        seen: list[int] = []

        def stable() -> bool:
            seen.append(sum(len(v) for v in self.state()["events"].values()))
            return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3] and pending(self) == 0
        wait_for(stable, 120, interval=0.5, message="Klaviyo to hold every event")
        return self.state()


def pending(run: Run) -> int:
    return sum(int(run.redis.llen(f"{run.prefix}:{name}")) for name in BULK_LISTS)


@pytest.fixture
def runs(redis_server: PrivateRedis, erp: ServerThread, mapping_file: Path) -> Iterator[list[Run]]:
    made: list[tuple[Run, WorkerProcess]] = []

    def make() -> Run:
        klaviyo = ServerThread(create_klaviyo(KlaviyoSandboxConfig())).start()
        env = fleet_env(redis_server.url, klaviyo.url, BCSYNC_BLUECHERRY_BASE_URL=erp.url,
                        BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=KEY, BCSYNC_MAPPING_FILE=str(mapping_file))
        run = Run(env, klaviyo, redis.Redis.from_url(redis_server.url, decode_responses=True))
        made.append((run, WorkerProcess("batch", env, 2).start()))
        return run

    yield [make(), make(), make()]
    for run, worker in made:
        worker.stop()
        run.klaviyo.stop()
        run.redis.close()


def events(state: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Every stored event as (metric, unique_id, value, time), sorted: one entry per stored event."""
    return sorted((metric, str(e["unique_id"]), str(e["value"]), str(e["time"]))
                  for metric, stored in state["events"].items() for e in stored)


def profiles(state: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every profile as (external id, email, its consent): the customer backfill's result."""
    def consent(p: dict[str, Any]) -> str:
        subscriptions = p.get("subscriptions") or {}
        return json.dumps({channel: (subscriptions.get(channel) or {}).get("marketing", {}).get("consent")
                           for channel in ("email", "sms")})
    found = sorted((str(p.get("external_id")), str(p.get("email")), consent(p)) for p in state["profiles"].values())
    assert found
    return found


def aggregates(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(p.get("external_id") or p.get("email")): {k: v for k, v in p["properties"].items()
                                                          if k.startswith("erp_")}
            for p in state["profiles"].values() if any(k.startswith("erp_") for k in p["properties"])}


def finished(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return out


def test_two_processes_deliver_what_one_does_and_a_killed_run_resumes_without_duplicates(runs: list[Run]) -> None:
    one, two, killed = runs
    one.customers()
    two.customers("--workers", "2")
    killed.customers("--workers", "2")
    assert profiles(two.state()) == profiles(one.state()) == profiles(killed.state()), "customers in 2 processes"
    assert not two.redis.exists(f"{two.prefix}:backfill:customers:plan")
    finished(one.backfill("--workers", "1"))
    expected = one.settled()
    assert events(expected) and all(e["backfill"] for v in expected["events"].values() for e in v)
    assert len({(m, u) for m, u, _, _ in events(expected)}) == len(events(expected)), "each event once"

    out = finished(two.backfill("--workers", "2"))
    assert "2 processes" in out and "of the bulk ceiling" in out, out
    state = two.settled()
    assert events(state) == events(expected), "every order's events exactly once, as one process sends them"
    assert aggregates(state) == aggregates(expected)
    assert state["duplicates_suppressed"] == 0

    # killed (every process of the run) once it is computing orders, then run again: it resumes its slices
    process = killed.backfill("--workers", "2")
    progress = f"{killed.prefix}:backfill:orders:progress"
    wait_for(lambda: int(killed.redis.hget(progress, "orders") or 0) >= 3 * PAGE, 120, interval=0.02,
             message="the run to be computing orders")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert killed.redis.exists(f"{killed.prefix}:backfill:orders:plan"), "killed mid-run, its plan kept"
    done_before = int(killed.redis.hget(progress, "orders") or 0)
    assert done_before < len({u for m, u, _, _ in events(expected) if m == "Placed Order"}) + 1000
    finished(killed.backfill("--workers", "2"))
    state = killed.settled()
    assert events(state) == events(expected), "nothing lost, nothing stored twice"
    assert aggregates(state) == aggregates(expected)
    assert not killed.redis.exists(f"{killed.prefix}:backfill:orders:plan"), "a finished run forgets its plan"
