"""A full catalog re-sync into a Klaviyo that already holds the catalog (issue 15, item 3): after the fleet's
Redis state is flushed, every catalog create finds its item or variant already there. Klaviyo's bulk job
reports such a row with a code and a detail and no HTTP status (OpenAPI `APIJobErrorPayload`); each must
become an update - a variant with its newest stock figure - and nothing may be dead-lettered.

Both sandboxes over HTTP, the poller (one `--once` cycle) reading styles, locations and inventory from Blue Cherry,
real fast and batch workers at concurrency 2 on a private Redis, the beat's flush tick played by a thread.
Between the loads the ERP changes (a renamed and repriced style, a new style, stock moves) while the fleet
forgets everything; Klaviyo's catalog must end equal to the ERP's and its stock to the oracle's figures."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from config.celery import make_app
from config.mapping import Mapping
from config.settings import Settings
from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.klaviyo.app import create_app as create_klaviyo
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.server import ServerThread
from state.dead_letters import DeadLetters
from state.exceptions import ExceptionRegister
from state.stock import StockState
from testing.oracle.diff import stock_findings
from testing.oracle.expected import expected_state
from tests.support.fleet import WorkerProcess, configured_like, fleet_env, pending_work, wait_for
from workers.poller import build_poller

pytestmark = pytest.mark.integration

KEY = "catalog-key"
PREFIX = "$custom:::$default:::"
MAPPING_TOML = "[stock]\ndebounce_seconds = 0.3\n"
RESOURCES = ("location", "style", "inventory")
LANES = ("fast", "default", "batch")
CREATE_JOBS = ("POST /api/catalog-item-bulk-create-jobs", "POST /api/catalog-variant-bulk-create-jobs")


def expected_catalog(dump: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """What Klaviyo must hold for the ERP's active styles under the default mapping (docs/configuration.md):
    one item per style and colour, one variant per SKU."""
    items: dict[str, dict[str, Any]] = {}
    variants: dict[str, dict[str, Any]] = {}
    for style in dump["resources"]["style"]:
        if style["status"] == "D":
            continue
        for sku in style["stylecolorsizes"]["rows-i"]:
            if sku["status"] == "D":
                continue
            item = f"{style['style']}-{sku['color_code']}"
            variant = f"{item}-{sku['lbl_code']}-{sku['dimension']}-{sku['size_desc']}"
            items[PREFIX + item] = {"title": f"{style['style_name']} - {sku['color_name']}",
                                    "description": style["style_desc"]}
            variants[PREFIX + variant] = {"item": PREFIX + item, "price": float(sku["retail_price"]),
                                          "title": f"{style['style_name']} - {sku['color_name']} - {sku['size_desc']}"}
    return items, variants


def together(*calls: Callable[[], object]) -> None:
    """Run the calls at once (worker processes start and stop in seconds each: not one after the other)."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class CatalogFleet:
    def __init__(self, redis_url: str, tmp: Path) -> None:
        config = BlueCherrySandboxConfig(subscription_key=KEY, customers=0, styles=5, orders=0,
                                         start_time="2026-03-02 10:00:00", frozen=True)
        self.bluecherry = ServerThread(create_bluecherry(config))
        self.bluecherry.start()
        self.klaviyo_app = create_klaviyo(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.1))
        self.klaviyo = ServerThread(self.klaviyo_app)
        self.klaviyo.start()
        mapping = tmp / "mapping.toml"
        mapping.write_text(MAPPING_TOML)
        self.env = fleet_env(redis_url, self.klaviyo.url, BCSYNC_MAPPING_FILE=str(mapping),
                             BCSYNC_BLUECHERRY_BASE_URL=self.bluecherry.url,
                             BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=KEY)
        self.prefix = self.env["BCSYNC_KEY_PREFIX"]
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        settings = Settings.model_validate({k[len("BCSYNC_"):].lower(): v for k, v in self.env.items()
                                            if k.startswith("BCSYNC_")})
        self.celery = make_app(settings)
        self.workers = [WorkerProcess(lane, self.env, 2) for lane in ("fast", "batch")]
        together(*(worker.start for worker in self.workers))
        self.stop_flushing = threading.Event()
        self.flusher = threading.Thread(target=self._flush, daemon=True)
        self.flusher.start()

    def _flush(self) -> None:  # the beat's `bcsync.flush_stock` tick
        while not self.stop_flushing.wait(0.3):
            self.celery.send_task("bcsync.flush_stock", args=[], queue="batch")

    def poll_once(self) -> None:
        """`bcsync poller --once` for the stock and catalog resources, run in this process as the fleet's."""
        with configured_like(self.env, self.celery):
            cycles = build_poller(RESOURCES).run_once()
        assert sorted(cycles) == sorted(RESOURCES) and not any(c.aborted for c in cycles.values()), cycles

    def bc(self, path: str, body: Any = None) -> Any:
        if body is None:
            return httpx.get(f"{self.bluecherry.url}{path}", timeout=30).json()
        response = httpx.post(f"{self.bluecherry.url}{path}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def klaviyo_state(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.klaviyo.url}/_sandbox/state", timeout=30).json())

    def requests(self, key: str) -> int:
        endpoints = httpx.get(f"{self.klaviyo.url}/_sandbox/stats", timeout=30).json()["endpoints"]
        return int(endpoints.get(key, {}).get("received", 0))

    def dead_letters(self) -> list[str]:
        store = DeadLetters(self.redis, self.prefix)
        return [f"{entry.kind}: {entry.reason}" for lane in LANES for entry in store.list(lane)]

    def exceptions(self) -> list[str]:
        register = ExceptionRegister(self.redis, self.prefix, Mapping().owners)
        return [f"{rec.type} {rec.record_key}" for rec in register.list()]

    def mismatches(self) -> list[str]:
        """Every difference between Klaviyo's catalog and stock and the ERP's; [] when they agree."""
        dump = self.bc("/_sandbox/dump")
        items, variants = expected_catalog(dump)
        held = self.klaviyo_state()["catalog"]
        wrong = [f"item {i}: {held['items'].get(i)}" for i, want in items.items()
                 if {k: (held["items"].get(i) or {}).get(k) for k in want} != want]
        for v, want in variants.items():
            got = held["variants"].get(v) or {}
            if {k: got.get(k) for k in want} != want:
                wrong.append(f"variant {v}: {got}")
        stock = stock_findings(expected_state(dump), held["variants"])
        return wrong + [f"stock {finding}" for finding in stock]

    def settle(self, timeout: float) -> list[str]:
        """Until Klaviyo agrees with the ERP and the fleet is idle, or something is dead-lettered; returns
        the mismatches left."""
        quiet = [0]

        def settled() -> bool:
            if self.dead_letters():
                return True
            idle = pending_work(self.redis, self.prefix) == 0 and not StockState(self.redis, self.prefix).pending()
            quiet[0] = quiet[0] + 1 if idle and not self.mismatches() else 0
            return quiet[0] >= 3

        wait_for(settled, timeout, interval=0.3, message="Klaviyo's catalog equal to the ERP's, the fleet idle")
        return self.mismatches()

    def stop(self) -> None:
        self.stop_flushing.set()
        self.flusher.join(5)
        together(*(worker.stop for worker in self.workers))
        self.klaviyo.stop()
        self.bluecherry.stop()
        self.redis.close()


@pytest.fixture
def fleet(redis_url: str, tmp_path: Path) -> Iterator[CatalogFleet]:
    made = CatalogFleet(redis_url, tmp_path)
    yield made
    made.stop()


def test_a_full_catalog_resync_into_a_klaviyo_that_holds_it_dead_letters_nothing(fleet: CatalogFleet) -> None:
    fleet.poll_once()
    left = fleet.settle(30)
    assert fleet.dead_letters() == [] and left == [], (fleet.dead_letters()[:5], left[:5], len(left))
    first = fleet.klaviyo_state()["catalog"]
    assert len(first["items"]) >= 10 and len(first["variants"]) >= 50  # a few dozen of each

    # while the fleet forgets everything, the ERP moves on: a style renamed and repriced, a new style, stock
    styles = fleet.bc("/_sandbox/dump")["resources"]["style"]
    renamed = next(s for s in styles if s["status"] == "A")
    moved = [sku for s in styles if s["status"] == "A" for sku in s["stylecolorsizes"]["rows-i"]][:6]
    fleet.bc("/_sandbox/clock", {"advance": 60})
    fleet.bc("/_sandbox/apply", [
        {"op": "edit_style", "style": renamed["style"], "fields": {"style_name": "Renamed Tee"},
         "skus": [{"upc": sku["upc"], "retail_price": 11.5} for sku in renamed["stylecolorsizes"]["rows-i"]]},
        {"op": "create_style", "header": {**{k: v for k, v in renamed.items()
                                             if k not in ("pkey", "stylecolorsizes", "styledetail", "last_mod")},
                                          "std_cost": 1.0, "style": "NEW9000", "style_name": "New Coat"},
         "skus": [{**sku, "upc": f"99{n:010d}", "color_code": "NEW"}
                  for n, sku in enumerate(renamed["stylecolorsizes"]["rows-i"][:3])]},
        *({"op": "adjust_stock", "upc": sku["upc"], "location": "WH1", "delta": 7} for sku in moved),
    ])
    fleet.redis.flushdb()  # the fleet's own private Redis: ledger, known objects, figures, watermarks - gone

    fleet.poll_once()
    left = fleet.settle(30)
    dead = fleet.dead_letters()
    assert dead == [], f"{len(dead)} dead letters after the re-sync, e.g. {dead[:3]}"
    assert left == [], left[:5]
    assert fleet.exceptions() == []
    refused = [e for job in fleet.klaviyo_state()["jobs"].values() for e in job.get("errors") or []]
    assert refused and all("already exists" in e["detail"] for e in refused)  # the path under test ran

    # the existing objects are known now: the next change goes straight to updates, no create job
    creates = sum(fleet.requests(key) for key in CREATE_JOBS)
    fleet.bc("/_sandbox/clock", {"advance": 60})
    fleet.bc("/_sandbox/apply", [{"op": "edit_style", "style": renamed["style"],
                                  "fields": {"style_name": "Renamed Again"}}])
    fleet.poll_once()
    assert fleet.settle(30) == [] and fleet.dead_letters() == []
    assert sum(fleet.requests(key) for key in CREATE_JOBS) == creates
