"""Both sandboxes, real Redis and three real worker processes (default, fast, batch; concurrency 2) for the
order lifecycle, shared by the module; the poller runs in-process, one cycle per step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from config.celery import make_app
from config.mapping import load_mapping
from config.settings import Settings
from config.task_names import HANDLE_CHANGE as CHANGE_TASK
from config.task_names import HANDLE_CUSTOMER_CHANGES as CUSTOMER_TASK
from connectors.bluecherry.client import BlueCherryClient
from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.app import create_app as create_klaviyo
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.exceptions import ExceptionRegister
from sync.changes import ChangeEvent
from sync.fields import child_rows, field_text, read_text
from tests.support.fleet import WorkerProcess, dialect_mapping, fleet_env, pending_work, wait_idle
from tests.support.redis_server import PrivateRedis
from workers.poller import Poller

BC_KEY = "orders-e2e-key"
ORDER_RESOURCES = ("order", "pick", "invoice", "creditmemo")
# customers are polled too: a customer's order events name its Klaviyo profile by id, which its upsert makes
POLLED = ("customer", *ORDER_RESOURCES)
# the order bulk buffer's lists (events; the aggregates' profile upserts), below the key prefix: work not sent yet
BULK_LISTS = ("orders:bulk", "orders:bulk:profile_upsert")
# Laid over the tenant dialect's own mapping (`dialect_mapping`).
MAPPING = """
[lifecycle]
use_storefront_ref = true
"""


class OrderFleet:
    def __init__(self, redis_url: str, bc: ServerThread, klaviyo: ServerThread, mapping_file: Path,
                 dialect: str = "default", **env: str) -> None:
        self.bc_url = bc.url
        self.klaviyo_url = klaviyo.url
        self.dialect = dialect  # the Blue Cherry tenant's; `mapping_file` is that dialect's mapping
        self.env = fleet_env(redis_url, klaviyo.url, dialect, BCSYNC_BLUECHERRY_BASE_URL=bc.url,
                             BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=BC_KEY, BCSYNC_MAPPING_FILE=str(mapping_file), **env)
        self.prefix = self.env["BCSYNC_KEY_PREFIX"]
        values = {k[len("BCSYNC_"):].lower(): v for k, v in self.env.items() if k.startswith("BCSYNC_")}
        self.settings = Settings.model_validate(values)
        self.mapping = load_mapping(mapping_file)
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.app = make_app(self.settings)
        self.workers: list[WorkerProcess] = []
        self.bc = BlueCherryClient(bc.url, BC_KEY, timeout=30, mapping=self.mapping)
        self.upcs = self._upcs()

    # --- Blue Cherry ------------------------------------------------------------------------------
    def _upcs(self) -> list[str]:
        """The active SKUs' UPCs of the tenant's style, read as the tenant serves it (the mapping's names)."""
        fields = self.mapping.fields.style
        style = next(iter(self.bc.iter_pages(self.mapping.resources.style, None)))[0]
        return [str(row[fields.sku_upc]).strip() for row in child_rows(style[fields.skus]) or []
                if field_text(row, fields.sku_status) in ("", "A")]

    def invoice_of(self, pick: str) -> str:
        """The invoice number of a pick ticket, read as the tenant serves it (the mapping's names)."""
        fields = self.mapping.fields.pick
        for page in self.bc.iter_pages(self.mapping.resources.pick, None):
            for record in page:
                if read_text(record, fields, "number") == pick:
                    return read_text(record, fields, "invoice")
        raise AssertionError(f"pick {pick} not found")

    def apply(self, *ops: dict[str, Any]) -> list[dict[str, Any]]:
        """Apply ERP operations, then move the sandbox clock on a minute (distinct last_mod per step)."""
        r = httpx.post(f"{self.bc_url}/_sandbox/apply", json=list(ops), timeout=60)
        assert r.status_code == 200, r.text
        httpx.post(f"{self.bc_url}/_sandbox/clock", json={"advance": 60}, timeout=10).raise_for_status()
        return r.json()["touched"]  # type: ignore[no-any-return]

    def new_order(self, **params: Any) -> str:
        touched = self.apply({"op": "place_order", **params})
        return next(t["record"]["ord_num"] for t in touched if t["resource"] == "order")

    def new_customer(self) -> str:
        touched = self.apply({"op": "create_customer"})
        return next(t["record"]["customer"] for t in touched if t["resource"] == "customer")

    # --- the fleet --------------------------------------------------------------------------------
    def emit(self, events: list[ChangeEvent]) -> None:
        """As the poller's emit: customers in one message per lane (their profiles come first: an order's
        events wait for the customer's profile id), every other change in a message of its own."""
        customers: dict[str, list[dict[str, Any]]] = {}
        with self.app.producer_or_acquire() as producer:
            for event in events:
                if event.resource == "customer":
                    customers.setdefault(event.lane, []).append(event.model_dump(mode="json"))
                    continue
                self.app.send_task(CHANGE_TASK, args=[event.model_dump(mode="json")], queue=event.lane,
                                   producer=producer)
            for lane, bodies in customers.items():
                self.app.send_task(CUSTOMER_TASK, args=[bodies], queue=lane, producer=producer)

    def poll(self) -> None:
        """One poller cycle over the order resources, then wait until every lane is idle."""
        self.emit(self.capture())
        self.wait_idle()

    def capture(self, resources: tuple[str, ...] = POLLED) -> list[ChangeEvent]:
        """One poller cycle over customers and the order resources; its change events are returned instead
        of sent."""
        captured: list[ChangeEvent] = []
        register = ExceptionRegister(self.redis, self.prefix, self.mapping.owners)
        poller = Poller(self.bc, self.redis, captured.extend, register, mapping=self.mapping,
                        settings=self.settings, resources=resources)
        poller.run_once()
        return captured

    def poll_customers(self) -> None:
        """Only the customers: their Klaviyo profiles exist before any order of theirs is read."""
        self.emit(self.capture(("customer",)))
        self.wait_idle()

    def busy(self) -> int:
        return pending_work(self.redis, self.prefix, BULK_LISTS)

    def wait_idle(self, timeout: float = 60.0) -> None:
        wait_idle(self.redis, self.prefix, timeout, BULK_LISTS)

    # --- Klaviyo ----------------------------------------------------------------------------------
    def klaviyo_state(self) -> dict[str, Any]:
        return httpx.get(f"{self.klaviyo_url}/_sandbox/state", timeout=30).json()  # type: ignore[no-any-return]

    def events(self, order: str) -> dict[str, list[dict[str, Any]]]:
        """metric -> events of one ERP order, in arrival order."""
        out: dict[str, list[dict[str, Any]]] = {}
        for metric, events in self.klaviyo_state()["events"].items():
            mine = [e for e in events if e["properties"].get("ErpOrderNumber") == order]
            if mine:
                out[metric] = mine
        return out

    def unique_ids(self, order: str) -> dict[str, list[str]]:
        return {m: sorted(e["unique_id"] for e in evs) for m, evs in self.events(order).items()}

    def profile(self, **match: str) -> dict[str, Any]:
        for p in self.klaviyo_state()["profiles"].values():
            if all(p.get(k) == v for k, v in match.items()):
                return p  # type: ignore[no-any-return]
        raise AssertionError(f"no Klaviyo profile with {match}")

    def dead_letters(self) -> int:
        return sum(int(self.redis.zcard(f"{self.prefix}:dlq:{lane}")) for lane in ("fast", "default", "batch"))

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.bc.close()
        self.redis.close()


@contextmanager
def running_fleet(redis_server: PrivateRedis, folder: Path, mapping: str,
                  klaviyo_config: KlaviyoSandboxConfig | None = None, lanes: dict[str, int] | None = None,
                  include: tuple[str, ...] = (), dialect: str = "default", **env: str) -> Iterator[OrderFleet]:
    """A Blue Cherry sandbox (one style, no orders) speaking `dialect`, a Klaviyo sandbox (limits off unless
    configured) and one worker per lane with the dialect's mapping and `mapping` (TOML) laid over it. `lanes`
    (lane -> concurrency; default every lane at 2), `include` (extra modules the workers import) and `env`
    (BCSYNC_ overrides) tune the fleet."""
    mapping_file = folder / "mapping.toml"
    mapping_file.write_text(dialect_mapping(mapping, dialect), encoding="utf-8")
    bc_config = BlueCherrySandboxConfig(subscription_key=BC_KEY, customers=0, styles=1, orders=0,
                                        start_time="2026-03-02 10:00:00", frozen=True, dialect=dialect)
    klaviyo_config = klaviyo_config or KlaviyoSandboxConfig(rate_limits_enabled=False)
    with ServerThread(create_bluecherry(bc_config)) as bc, ServerThread(create_klaviyo(klaviyo_config)) as klaviyo:
        fleet = OrderFleet(redis_server.url, bc, klaviyo, mapping_file, dialect, **env)
        try:
            for lane, concurrency in (lanes or {"default": 2, "fast": 2, "batch": 2}).items():
                fleet.workers.append(WorkerProcess(lane, fleet.env, concurrency, include).start())
            yield fleet
        finally:
            fleet.stop()  # workers stopped by pid; the servers stop on leaving the with


@pytest.fixture(scope="module")
def order_fleet(redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory,
                dialect: str) -> Iterator[OrderFleet]:
    with running_fleet(redis_server, tmp_path_factory.mktemp("orders-e2e"), MAPPING, dialect=dialect) as fleet:
        yield fleet
