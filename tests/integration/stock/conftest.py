"""A stock fleet for end-to-end tests: a Klaviyo sandbox on loopback (reachable in-process for seeding and
observation), real `bcsync worker` processes on a private Redis, a mapping file, and a flusher that plays
the beat's `bcsync.flush_stock` tick."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config.celery import make_app
from config.mapping import load_mapping
from config.settings import Settings
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.server import ServerThread
from state.stock import StockState
from sync.stock.coalesce import PendingFigure
from tests.support.fleet import WorkerProcess, dialect_mapping, fleet_env

# Laid over the tenant dialect's own mapping (`dialect_mapping`).
MAPPING_TOML = """
[stock]
sellable_warehouses = ["WH1", "WH2"]
high_demand_skus = ["HOT-*"]
debounce_seconds = 0.3
"""


def inventory_row(style: str, color: str, size: str, location: str, *, oh: int, pick: int = 0,
                  open_qty: int = 0, last_mod: str = "2026-11-20 10:00:00") -> dict[str, Any]:
    return {"style": style, "color_code": color, "lbl_code": "", "dimension": "", "size_desc": size,
            "upc": "", "location": location, "qty_oh": oh, "qty_pick": pick, "qty_avail": oh - pick,
            "qty_open": open_qty, "last_mod": last_mod}


def variant_id(external_id: str) -> str:
    return f"$custom:::$default:::{external_id}"


class StockFleet:
    def __init__(self, redis_url: str, config: KlaviyoSandboxConfig, tmp: Path, dialect: str = "default",
                 **env: str) -> None:
        self.app = create_app(config)
        self.server = ServerThread(self.app)
        self.server.start()
        mapping = tmp / "mapping.toml"
        mapping.write_text(dialect_mapping(MAPPING_TOML, dialect))
        self.mapping = load_mapping(mapping)  # how the workers read a Blue Cherry tenant speaking `dialect`
        self.env = fleet_env(redis_url, self.server.url, dialect, BCSYNC_MAPPING_FILE=str(mapping), **env)
        self.prefix = self.env["BCSYNC_KEY_PREFIX"]
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.state = StockState(self.redis, self.prefix)
        self.workers: list[WorkerProcess] = []
        self._flushing = threading.Event()
        self._flusher: threading.Thread | None = None
        settings = Settings.model_validate({k[len("BCSYNC_"):].lower(): v for k, v in self.env.items()
                                            if k.startswith("BCSYNC_")})
        self.celery = make_app(settings)

    @property
    def sandbox(self) -> KlaviyoSandbox:
        sandbox: KlaviyoSandbox = self.app.state.sandbox
        return sandbox

    def worker(self, lane: str, concurrency: int = 2, include: tuple[str, ...] = ()) -> WorkerProcess:
        w = WorkerProcess(lane, self.env, concurrency, include).start()
        self.workers.append(w)
        return w

    def publish(self, task: str, args: list[Any], queue: str) -> None:
        self.celery.send_task(task, args=args, queue=queue)

    def records(self, resource: str, records: list[dict[str, Any]], observed_at: str, queue: str) -> None:
        """What the poller / CSV worker hand the flow: `bcsync.stock_records` on a lane."""
        self.publish("bcsync.stock_records", [resource, records, observed_at], queue)

    def start_flusher(self, interval: float = 0.5) -> None:
        def run() -> None:
            while not self._flushing.wait(interval):
                self.publish("bcsync.flush_stock", [], "batch")

        self._flusher = threading.Thread(target=run, daemon=True)
        self._flusher.start()

    def quantity(self, external_id: str) -> int | None:
        entry = self.sandbox.catalog.variants.get(variant_id(external_id))
        return None if entry is None else entry.attributes.get("inventory_quantity")

    def seed_variants(self, item: str, external_ids: list[str], quantity: int = 0) -> None:
        """Variants Klaviyo already holds (created in the sandbox in-process, known to the fleet)."""
        catalog = self.sandbox.catalog
        now = self.sandbox.now()
        catalog.create("catalog-item", {"external_id": item, "title": item, "description": item,
                                        "url": "https://shop.example.com"}, None, now)
        for ext in external_ids:
            catalog.create("catalog-variant", {"external_id": ext, "title": ext, "description": ext, "sku": ext,
                                               "inventory_quantity": quantity, "price": 1.0,
                                               "url": "https://shop.example.com"}, variant_id(item), now)
        self.state.mark_created("item", [item])
        for start in range(0, len(external_ids), 10_000):
            self.state.mark_created("variant", external_ids[start : start + 10_000])

    def start_refresh(self, count: int, version: str) -> list[str]:
        """A stock refresh of `count` variants Klaviyo holds: debounced batch figures, flushed at once."""
        ids = [f"BULK-{n // 100:04d}---{n % 100:02d}" for n in range(count)]
        self.seed_variants("BULK-ITEM", ids, quantity=0)
        now = time.time() - 3600  # long quiet: every figure is due
        self.state.put_pending_many(PendingFigure(e, 1, version, now, now) for e in ids)
        self.publish("bcsync.flush_stock", [], "batch")
        return ids

    def recorded(self, path: Path) -> list[dict[str, Any]]:
        """Every request the sandbox has answered so far. It records a request just after applying it, so a
        test that saw the effect in the sandbox's state waits here for the line too."""
        answered = sum(budget.received for budget in list(self.sandbox.limiter.budgets.values()))
        deadline = time.monotonic() + 10
        while True:
            entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if sum(1 for e in entries if str(e["path"]).startswith("/api/")) >= answered:
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(f"{answered} requests answered, fewer recorded in {path}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._flushing.set()
        for w in self.workers:
            w.stop()
        self.server.stop()
        self.redis.close()


@pytest.fixture
def stock_fleet(redis_url: str, tmp_path: Path, dialect: str) -> Iterator[Callable[..., StockFleet]]:
    """Stock fleets whose workers read a Blue Cherry tenant speaking the module's `dialect`."""
    made: list[StockFleet] = []

    def make(config: KlaviyoSandboxConfig | None = None, **env: str) -> StockFleet:
        folder = tmp_path / f"fleet{len(made)}"
        folder.mkdir()
        fleet = StockFleet(redis_url, config or KlaviyoSandboxConfig(rate_limits_enabled=False), folder, dialect,
                           **env)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.stop()
