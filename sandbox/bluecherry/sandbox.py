"""The live sandbox object (``app.state.sandbox``): store, clock, tenant, faults, live trading and stats."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

from sandbox.bluecherry.clock import SandboxClock
from sandbox.bluecherry.config import BlueCherrySandboxConfig, FaultConfig
from sandbox.bluecherry.csvdrop import drop_reports
from sandbox.bluecherry.dialects import get_dialect
from sandbox.bluecherry.faults import FaultState
from sandbox.bluecherry.generator import generate_tenant
from sandbox.bluecherry.live import LiveTrader
from sandbox.bluecherry.ops import apply_ops
from sandbox.bluecherry.store import RecordStore
from sandbox.bluecherry.tenant import Tenant

RESOURCES = ("customer", "order", "pick", "invoice", "creditmemo", "style", "inventory", "Location")


class BlueCherrySandbox:
    def __init__(self, config: BlueCherrySandboxConfig) -> None:
        self.config = config
        # one internal model whatever the dialect: the dialect renders it on the way out, reads it on the way in
        self.dialect = get_dialect(config.dialect)
        self.clock = SandboxClock(config.timezone, config.start_time, config.frozen)
        self.store = RecordStore(config.database)
        self.faults = FaultState(dataclasses.replace(config.faults), config.seed, self.dialect.malformed_dates)
        self.tenant = Tenant(self.store, self.clock, config.seed)
        self.live = LiveTrader(self.tenant, dataclasses.replace(config.live_rates), config.seed)
        self.live.running = config.live
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.served = 0
        self.csv_files: list[str] = []
        self.generated: dict[str, int] = {}
        if self.store.is_empty():
            self.generate()

    def generate(self, **sizes: int) -> dict[str, int]:
        cfg = self.config
        self.generated = generate_tenant(
            self.store,
            self.clock,
            seed=sizes.get("seed", cfg.seed),
            customers=sizes.get("customers", cfg.customers),
            styles=sizes.get("styles", cfg.styles),
            orders=sizes.get("orders", cfg.orders),
            history_days=sizes.get("history_days", cfg.history_days),
            storefront_every=cfg.storefront_every,
        )
        return self.generated

    def reset(self, sizes: dict[str, int]) -> dict[str, int]:
        """Throw the tenant away and generate a fresh one; faults and stats return to the configured start."""
        with self.store.lock:
            self.store.clear()
            self.faults.config = dataclasses.replace(self.config.faults)
            self.faults.injected.clear()
            self.requests.clear()
            self.statuses.clear()
            self.served = 0
            return self.generate(**sizes)

    def apply(self, ops: Any) -> list[dict[str, Any]]:
        """Ops in the internal vocabulary, or with the dialect's names and values; the records touched are
        returned in the internal model (so a test reads them the same whatever the dialect)."""
        if isinstance(ops, list):
            ops = [self.dialect.read_op(item) for item in ops]
        return apply_ops(self.tenant, ops)

    def drop_csv(self, folder: str | None = None) -> list[str]:
        target = folder or self.config.csv_drop_dir
        if not target:
            raise ValueError('no CSV folder: start with csv_drop_dir (--csv-dir) or pass {"dir": ...}')
        files = [str(p) for p in drop_reports(self.store, self.clock, Path(target), self.config.csv_encoding,
                                              self.dialect.csv_cell)]
        self.csv_files.extend(files)
        return files

    def update_faults(self, values: dict[str, Any]) -> dict[str, Any]:
        if values.pop("reset", False):
            self.faults.config = FaultConfig()
        self.faults.config.update(values)
        return self.faults.config.as_dict()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            "records_served": self.served,
            "faults_injected": dict(self.faults.injected),
            "live": {"running": self.live.running, "applied": self.live.applied, "refused": self.live.failed},
            "csv_files": list(self.csv_files),
            "generated": self.generated,
            "counts": {self.dialect.served_name(r): self.store.count(r) for r in RESOURCES},
        }

    def dump(self) -> dict[str, Any]:
        """Every stored record of every resource as ``_include=all`` serves it - in the dialect, under its
        resource names, which ``dialect`` names - never malformed (the stored truth an expected-state oracle
        compares against), with the clock. One read under the store lock: no op, live trade or paging touch
        lands between two resources. Blocking: call it from a thread."""
        render = self.dialect.render
        with self.store.lock:
            return {
                "dumped_at": self.clock.as_dict(),
                "timezone": self.clock.timezone,
                "dialect": self.dialect.name,
                "resources": {
                    self.dialect.served_name(r): [render(r, row.record()) for row in self.store.iterate(r)]
                    for r in RESOURCES
                },
            }
