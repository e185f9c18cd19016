from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.bluecherry.app import create_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.server import ServerThread

KEY = "test-key"


@pytest.fixture(scope="module")
def bc_sandbox() -> Iterator[ServerThread]:
    """The real Blue Cherry sandbox on a loopback port, frozen clock, a small tenant."""
    config = BlueCherrySandboxConfig(
        subscription_key=KEY, customers=450, styles=3, orders=0, start_time="2026-03-02 10:00:00", frozen=True
    )
    with ServerThread(create_app(config)) as server:
        yield server


def sandbox_post(server: ServerThread, path: str, body: Any) -> Any:
    response = httpx.post(f"{server.url}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


class Script:
    """A scripted bcapi: each request takes the next (status, body, headers); the requests are kept."""

    def __init__(self) -> None:
        self.responses: list[tuple[int, Any, dict[str, str]]] = []
        self.requests: list[Request] = []

    def app(self) -> Starlette:
        async def handle(request: Request) -> JSONResponse:
            self.requests.append(request)
            status, body, headers = self.responses.pop(0) if self.responses else (200, {"data": []}, {})
            return JSONResponse(body, status_code=status, headers=headers)

        return Starlette(routes=[Route("/api/{resource}", handle)])


@pytest.fixture
def scripted() -> Iterator[tuple[Script, ServerThread]]:
    script = Script()
    with ServerThread(script.app()) as server:
        yield script, server
