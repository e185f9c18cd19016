"""`bcsync erase` as an operator runs it: it shows what it will delete in each system (the Blue Cherry record
left as it is, the Klaviyo profile and the deletion request, the fleet's Redis records), asks first (`--yes`
for scripts), deletes nothing with `--dry-run`, and refuses a code neither system knows - one line, exit 1.
Both sandboxes serve on loopback; the command is a real `bcsync` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from config.mapping import ExceptionOwners
from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.app import create_app as create_klaviyo
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.daily_batch import DailyBatchStore
from state.erasure import ErasureTombstones
from state.exceptions import ExceptionRegister

pytestmark = pytest.mark.integration
BCSYNC = str(Path(sys.executable).with_name("bcsync"))
BC_KEY = "erase-cli-key"
KLAVIYO_KEY = "pk_test_0123456789abcdef"
PREFIX = "erasecli"


@dataclass
class Systems:
    env: dict[str, str]
    redis: redis.Redis
    bc_url: str
    klaviyo_url: str

    def customer(self, email: str) -> str:
        """A customer in Blue Cherry, its profile in Klaviyo (external_id = the code), and fleet state for it."""
        r = httpx.post(f"{self.bc_url}/_sandbox/apply", json=[{"op": "create_customer", "email": email}], timeout=30)
        r.raise_for_status()
        code = str(next(t["record"]["customer"] for t in r.json()["touched"] if t["resource"] == "customer"))
        body = {"data": {"type": "profile", "attributes": {"email": email, "external_id": code}}}
        r = httpx.post(f"{self.klaviyo_url}/api/profile-import", json=body, timeout=30, headers={
            "Authorization": f"Klaviyo-API-Key {KLAVIYO_KEY}", "revision": "2026-10-15",
            "Content-Type": "application/vnd.api+json"})
        assert r.status_code in (200, 201), r.text
        DailyBatchStore(self.redis, PREFIX).park(code, {"customer": code}, "2026-03-02T10:00:00Z")
        self.register.record("customer_mismatch", f"customer:{code}", "kept for operators")
        return code

    @property
    def register(self) -> ExceptionRegister:
        return ExceptionRegister(self.redis, PREFIX, ExceptionOwners())

    def profile_id(self, code: str) -> str:
        state: dict[str, Any] = httpx.get(f"{self.klaviyo_url}/_sandbox/state", timeout=30).json()
        return next(pid for pid, p in state["profiles"].items() if p.get("external_id") == code)

    def held(self, code: str) -> tuple[bool, int, bool]:
        """(daily-batch entry, exceptions about the customer, tombstone) as Redis holds them."""
        daily = bool(self.redis.hexists(DailyBatchStore(self.redis, PREFIX).key, code))
        exceptions = sum(1 for e in self.register.list(status=None) if e.record_key == f"customer:{code}")
        return daily, exceptions, code in ErasureTombstones(self.redis, PREFIX).stamps([code])

    def erase(self, *args: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BCSYNC, "erase", *args], env=self.env, input=answer, capture_output=True, text=True,
                              timeout=60)


@pytest.fixture(scope="module")
def systems(redis_server: Any) -> Iterator[Systems]:
    bc_config = BlueCherrySandboxConfig(subscription_key=BC_KEY, customers=0, styles=1, orders=0,
                                        start_time="2026-03-02 10:00:00", frozen=True)
    with ServerThread(create_bluecherry(bc_config)) as bc, \
            ServerThread(create_klaviyo(KlaviyoSandboxConfig(rate_limits_enabled=False))) as klaviyo:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")} | {
            "BCSYNC_REDIS_URL": redis_server.url, "BCSYNC_KEY_PREFIX": PREFIX,
            "BCSYNC_KLAVIYO_BASE_URL": klaviyo.url, "BCSYNC_KLAVIYO_API_KEY": KLAVIYO_KEY,
            "BCSYNC_BLUECHERRY_BASE_URL": bc.url, "BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY": BC_KEY,
            "BCSYNC_BLUECHERRY_MAX_ATTEMPTS": "1", "COLUMNS": "200", "NO_COLOR": "1"}
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        yield Systems(env, client, bc.url, klaviyo.url)
        for key in client.scan_iter(f"{PREFIX}*"):
            client.delete(key)
        client.close()


def test_dry_run_shows_each_systems_part_and_deletes_nothing(systems: Systems) -> None:
    code = systems.customer("dry.run@example.com")
    done = systems.erase(code, "--dry-run")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"customer {code} found: left as it is" in out  # Blue Cherry
    assert f"profile {systems.profile_id(code)} holds external_id {code}" in out  # Klaviyo, found
    assert "data-privacy deletion request for the profile email=dry.run@example.com" in out
    assert "daily-batch entry 1" in out and "exceptions 1" in out and f"Redis ({PREFIX}:*)" in out
    assert "dry run: nothing deleted" in out and "requested" not in out
    assert systems.held(code) == (True, 1, False)


def test_erase_asks_first_and_no_keeps_everything(systems: Systems) -> None:
    code = systems.customer("asked.first@example.com")
    done = systems.erase(code, answer="n\n")
    assert done.returncode == 1 and f"Erase customer {code}?" in done.stdout, done.stdout + done.stderr
    assert f"customer {code} not erased" in done.stderr
    assert systems.held(code) == (True, 1, False)
    done = systems.erase(code, answer="y\n")
    assert done.returncode == 0, done.stderr
    assert "data-privacy deletion requested for the Klaviyo profile (email=asked.first@example.com)" in done.stdout
    assert systems.held(code) == (False, 0, True)


def test_yes_erases_without_asking(systems: Systems) -> None:
    code = systems.customer("for.scripts@example.com")
    done = systems.erase(code, "--yes")  # no stdin: a prompt would abort
    assert done.returncode == 0, done.stderr
    assert "Erase customer" not in done.stdout and "fleet state purged" in done.stdout
    assert systems.held(code) == (False, 0, True)


@pytest.mark.parametrize("extra", [[], ["--yes"], ["--dry-run"]])
def test_a_code_unknown_to_both_systems_is_one_line_and_exit_1(systems: Systems, extra: list[str]) -> None:
    done = systems.erase("C9999999", *extra)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "no customer 'C9999999' in Blue Cherry or Klaviyo" in done.stderr
    assert done.stdout == ""
    assert not ErasureTombstones(systems.redis, PREFIX).stamps(["C9999999"])


def test_neither_system_readable_erases_nothing(systems: Systems) -> None:
    code = systems.customer("nobody.answers@example.com")
    env = systems.env | {"BCSYNC_BLUECHERRY_BASE_URL": "http://127.0.0.1:9", "BCSYNC_KLAVIYO_BASE_URL":
                         "http://127.0.0.1:9"}  # the discard port: nothing listens there
    done = subprocess.run([BCSYNC, "erase", code, "--yes"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "neither Blue Cherry" in done.stderr, done.stderr
    assert systems.held(code) == (True, 1, False)
