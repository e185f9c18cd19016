from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.bluecherry.app import create_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.server import ServerThread
from tests.support.poller import KEY


class Sandbox:
    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.url = server.url

    def post(self, path: str, body: Any) -> Any:
        response = httpx.post(f"{self.url}{path}", json=body, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def apply(self, *ops: dict[str, Any]) -> Any:
        return self.post("/_sandbox/apply", list(ops))

    def clock(self, **values: Any) -> Any:
        return self.post("/_sandbox/clock", values)

    def faults(self, **values: Any) -> Any:
        return self.post("/_sandbox/faults", values)

    def customer_codes(self) -> set[str]:
        codes: set[str] = set()
        page = 1
        while True:
            r = httpx.get(f"{self.url}/api/customer", params={"_pgno": page, "_pgsize": 200},
                          headers={"Ocp-Apim-Subscription-Key": KEY}, timeout=30)
            rows = r.json()["data"]["header"]
            codes |= {row["customer"] for row in rows if row["customer"] != "WEBGUEST"}
            if len(rows) < 200:
                return codes
            page += 1


@pytest.fixture(scope="module")
def bc_server() -> Iterator[ServerThread]:
    config = BlueCherrySandboxConfig(subscription_key=KEY, customers=0, styles=1, orders=0,
                                     start_time="2026-03-02 10:00:00", frozen=True)
    with ServerThread(create_app(config)) as server:
        yield server


@pytest.fixture
def sandbox(bc_server: ServerThread) -> Sandbox:
    """A fresh, empty tenant with a frozen clock and no faults."""
    box = Sandbox(bc_server)
    box.post("/_sandbox/reset", {"customers": 0, "styles": 1, "orders": 0})
    box.faults(reset=True)
    box.clock(now="2026-03-02 10:00:00", freeze=True)
    return box
