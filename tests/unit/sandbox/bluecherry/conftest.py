"""A small Blue Cherry sandbox on a loopback port per test, with a frozen clock, and a client for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sandbox.bluecherry.app import create_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.server import ServerThread

KEY = "test-key"
START = "2026-11-20 12:00:00"


class BlueCherry:
    """A running sandbox: ``api`` sends the subscription key, ``control`` talks to /_sandbox."""

    def __init__(self, server: ServerThread, app: Any) -> None:
        self.server = server
        self.sandbox = app.state.sandbox
        self.api = httpx.Client(base_url=f"{server.url}/api", headers={"Ocp-Apim-Subscription-Key": KEY}, timeout=30)
        self.control = httpx.Client(base_url=f"{server.url}/_sandbox", timeout=60)

    def apply(self, *ops: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.control.post("/apply", json=list(ops))
        assert response.status_code == 200, response.text
        return response.json()["touched"]  # type: ignore[no-any-return]

    def touched(self, *ops: dict[str, Any], resource: str) -> list[dict[str, Any]]:
        return [t["record"] for t in self.apply(*ops) if t["resource"] == resource]

    def get(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        response = self.api.get(f"/{resource}", params=params)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        return data if isinstance(data, list) else data["header"]  # type: ignore[no-any-return]

    def all(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            rows = self.get(resource, _pgno=page, _pgsize=200, **params)
            out.extend(rows)
            if len(rows) < 200:
                return out
            page += 1

    def inventory(self, upc: str, location: str = "WH1") -> dict[str, Any]:
        rows = self.get("inventory", **{"$filter": f"upc eq '{upc}' and location eq '{location}'"})
        return rows[0] if rows else {"qty_oh": 0, "qty_pick": 0, "qty_open": 0, "qty_avail": 0}

    def close(self) -> None:
        self.api.close()
        self.control.close()
        self.server.stop()


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., BlueCherry]]:
    started: list[BlueCherry] = []

    def start(**overrides: Any) -> BlueCherry:
        values: dict[str, Any] = dict(
            subscription_key=KEY,
            customers=20,
            styles=4,
            orders=80,
            history_days=30,
            start_time=START,
            frozen=True,
        )
        values.update(overrides)
        app = create_app(BlueCherrySandboxConfig(**values))
        bc = BlueCherry(ServerThread(app).start(), app)
        started.append(bc)
        return bc

    yield start
    for bc in started:
        bc.close()


@pytest.fixture
def bc(start_sandbox: Callable[..., BlueCherry]) -> BlueCherry:
    return start_sandbox()


@pytest.fixture
def upc(bc: BlueCherry) -> str:
    """An active SKU with plenty of stock in WH1."""
    store = bc.sandbox.store
    sku_upc = next(u for u in store.sku_upcs() if store.get_sku(u)["status"] == "A")
    bc.apply({"op": "adjust_stock", "upc": sku_upc, "location": "WH1", "qty_oh": 100})
    return sku_upc
