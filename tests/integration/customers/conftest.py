"""Customers end to end: both sandboxes on ServerThread, real Redis, real `bcsync worker` processes for the
fast and batch lanes (concurrency 2), the poller in-process with its real Celery emit.

The module's process is configured like the workers (the fleet's env is put in os.environ and the settings,
mapping and Celery app rebuilt), so in-process producers - the poller's `celery_emit`, `delivery.publish.submit`
from `bcsync erase` / `bcsync backfill customers`, the CLI through CliRunner - talk to this fleet's Redis and
never to a machine-wide one. Everything is restored when the module ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from config.celery import make_app
from config.mapping import load_mapping
from config.settings import Settings
from connectors.bluecherry.client import BlueCherryClient
from connectors.klaviyo.builders import unsubscribe_body
from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.app import create_app as create_klaviyo
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.exceptions import ExceptionRegister
from sync.fields import read_text
from tests.support.fleet import (
    WorkerProcess,
    configured_like,
    dialect_mapping,
    fleet_env,
    pending_work,
    wait_for,
    wait_idle,
)
from tests.support.redis_server import PrivateRedis
from workers.poller import CycleResult, Poller, build_poller

BC_KEY = "customers-e2e-key"
KLAVIYO_KEY = "pk_test_0123456789abcdef"
SUBSCRIBE = "POST /api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "POST /api/profile-subscription-bulk-delete-jobs"
DELETION = "POST /api/data-privacy-deletion-jobs"
# Small customer pages (a handful of customers spans pages); consent loads as historical imports. Laid over the
# tenant dialect's own mapping (`dialect_mapping`), so it names no path or field.
MAPPING = """
[resources.customer]
poll_seconds = 10
page_size = 10

[consent]
historical_import = true
"""


class CustomerFleet:
    def __init__(self, redis_url: str, bc: ServerThread, klaviyo: ServerThread, mapping_file: Path,
                 dialect: str = "default", **env: str) -> None:
        self.bc_url = bc.url
        self.klaviyo_url = klaviyo.url
        self.dialect = dialect  # the Blue Cherry tenant's; `mapping_file` is that dialect's mapping
        self.env = fleet_env(redis_url, klaviyo.url, dialect, BCSYNC_BLUECHERRY_BASE_URL=bc.url,
                             BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=BC_KEY, BCSYNC_MAPPING_FILE=str(mapping_file),
                             BCSYNC_KLAVIYO_API_KEY=KLAVIYO_KEY, **env)
        self.prefix = self.env["BCSYNC_KEY_PREFIX"]
        values = {k[len("BCSYNC_"):].lower(): v for k, v in self.env.items() if k.startswith("BCSYNC_")}
        self.settings = Settings.model_validate(values)
        self.mapping = load_mapping(mapping_file)
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.app = make_app(self.settings)
        self.workers: list[WorkerProcess] = []
        self.bc = BlueCherryClient(bc.url, BC_KEY, timeout=30, mapping=self.mapping)
        self.exceptions = ExceptionRegister(self.redis, self.prefix, self.mapping.owners)
        self._poller: Poller | None = None

    # --- Blue Cherry ------------------------------------------------------------------------------
    def apply(self, *ops: dict[str, Any]) -> list[dict[str, Any]]:
        """Apply ERP operations, then move the sandbox clock on a minute (distinct last_mod per step)."""
        r = httpx.post(f"{self.bc_url}/_sandbox/apply", json=list(ops), timeout=60)
        assert r.status_code == 200, r.text
        httpx.post(f"{self.bc_url}/_sandbox/clock", json={"advance": 60}, timeout=10).raise_for_status()
        return r.json()["touched"]  # type: ignore[no-any-return]

    def new_customer(self, **params: Any) -> dict[str, Any]:
        """Create a customer in the ERP; returns its record as written."""
        touched = self.apply({"op": "create_customer", **params})
        return next(t["record"] for t in touched if t["resource"] == "customer")

    def edit(self, code: str, **fields: Any) -> None:
        self.apply({"op": "edit_customer", "customer": code, "fields": fields})

    def consent(self, code: str, channel: str, optin: bool) -> None:
        self.apply({"op": "consent", "customer": code, "channel": channel, "optin": optin})

    def served(self, last_mod: str) -> httpx.Response:
        """The customers of one change stamp as the tenant serves them: its resource path and stamp field (the
        mapping's); `last_mod` as the model writes it (ISO, which every dialect's filter takes)."""
        resource = self.mapping.resources.customer
        return httpx.get(f"{self.bc_url}/api/{resource.path}", headers={"Ocp-Apim-Subscription-Key": BC_KEY},
                         params={"_pgsize": 200, "$filter": f"{resource.last_mod} eq '{last_mod}'"}, timeout=30)

    def code_of(self, record: dict[str, Any]) -> str:
        """A customer record as the tenant serves it (a change event's) -> its code, as the parsers read it."""
        return read_text(record, self.mapping.fields.customer, "code")

    def bc_faults(self, **settings: Any) -> None:
        httpx.post(f"{self.bc_url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()

    # --- the fleet --------------------------------------------------------------------------------
    def poller(self) -> Poller:
        """The real poller with its real emit (`celery_emit` publishes through the patched app)."""
        if self._poller is None:
            self._poller = build_poller(("customer",))
        return self._poller

    def poll(self) -> CycleResult:
        result = self.poller().run_once()["customer"]
        assert not result.aborted, result
        self.wait_idle()
        return result

    def busy(self) -> int:
        return pending_work(self.redis, self.prefix, ())

    def wait_idle(self, timeout: float = 60.0) -> None:
        wait_idle(self.redis, self.prefix, timeout, ())

    def send(self, task: str, queue: str, *args: Any, **kwargs: Any) -> None:
        self.app.send_task(task, args=list(args), kwargs=kwargs, queue=queue)

    def flush_state(self) -> int:
        """Lose the fleet's Redis state (watermarks, fingerprints, ledger, exceptions, daily batch...),
        keeping only the broker's own keys so the running workers still receive."""
        keys = [k for k in self.redis.scan_iter(f"{self.prefix}:*", count=1000)
                if not k.startswith(f"{self.prefix}:broker:")]
        if keys:
            self.redis.delete(*keys)
        return len(keys)

    def dead_letters(self) -> int:
        return sum(int(self.redis.zcard(f"{self.prefix}:dlq:{lane}")) for lane in ("fast", "default", "batch"))

    # --- Klaviyo ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.klaviyo_url}/_sandbox/state", timeout=30).json()  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.klaviyo_url}/_sandbox/stats", timeout=30).json()  # type: ignore[no-any-return]

    def received(self, endpoint: str) -> int:
        return int(self.stats()["endpoints"].get(endpoint, {}).get("received", 0))

    def profile(self, external_id: str) -> dict[str, Any] | None:
        for p in self.state()["profiles"].values():
            if p.get("external_id") == external_id:
                return p  # type: ignore[no-any-return]
        return None

    def wait_profile(self, external_id: str, check: Any = bool, message: str = "", timeout: float = 60) -> dict:
        def found() -> dict[str, Any] | None:
            p = self.profile(external_id)
            return p if p is not None and check(p) else None

        return wait_for(found, timeout, interval=0.3, message=message or f"profile {external_id}")  # type: ignore

    def klaviyo_unsubscribe(self, email: str) -> None:
        """An unsubscribe made in Klaviyo itself (a click on an email's unsubscribe link)."""
        (bulk,) = unsubscribe_body([{"channel": "email", "profile": {"email": email}, "list_id": None}])
        r = httpx.post(f"{self.klaviyo_url}/api/profile-subscription-bulk-delete-jobs", json=bulk.body,
                       headers={"Authorization": f"Klaviyo-API-Key {KLAVIYO_KEY}", "revision": "2026-10-15",
                                "Content-Type": "application/vnd.api+json"}, timeout=30)
        assert r.status_code == 202, r.text
        httpx.post(f"{self.klaviyo_url}/_sandbox/complete-jobs", timeout=30).raise_for_status()

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        if self._poller is not None:
            self._poller.client.close()
        self.bc.close()
        self.redis.close()


def marketing(profile: dict[str, Any], channel: str) -> str:
    return str(profile["subscriptions"][channel]["marketing"]["consent"])


@pytest.fixture(scope="module")
def fleet(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory,
          dialect: str) -> Iterator[CustomerFleet]:
    with customer_fleet(redis_server, tmp_path_factory, dialect) as made:
        yield made


@contextmanager
def customer_fleet(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory, dialect: str = "default",
                   **env: str) -> Iterator[CustomerFleet]:
    """The fleet of this package's tests, the Blue Cherry tenant speaking `dialect` and read with its mapping;
    `env`: BCSYNC_ settings of its own (a module's `fleet` fixture)."""
    mapping_file = tmp_path_factory.mktemp("customers-e2e") / "mapping.toml"
    mapping_file.write_text(dialect_mapping(MAPPING, dialect), encoding="utf-8")
    # The ERP clock is in the past, so Klaviyo's own changes (real time) are newer than any ERP consent.
    bc_config = BlueCherrySandboxConfig(subscription_key=BC_KEY, customers=0, styles=1, orders=0,
                                        start_time="2026-03-02 10:00:00", frozen=True, dialect=dialect)
    with ServerThread(create_bluecherry(bc_config)) as bc, \
            ServerThread(create_klaviyo(KlaviyoSandboxConfig(rate_limits_enabled=False))) as klaviyo, \
            ExitStack() as stack:
        fleet = CustomerFleet(redis_server.url, bc, klaviyo, mapping_file, dialect, **env)
        stack.enter_context(configured_like(fleet.env, fleet.app))
        try:
            for lane in ("fast", "batch"):
                fleet.workers.append(WorkerProcess(lane, fleet.env, concurrency=2).start())
            yield fleet
        finally:
            fleet.stop()  # workers stopped by pid; the servers stop on leaving the with
