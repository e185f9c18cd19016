"""Fixtures: a Klaviyo sandbox on loopback (real HTTP), a client with Klaviyo's headers, a fake clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.server import ServerThread

HEADERS = {
    "Authorization": "Klaviyo-API-Key pk_test_sandbox",
    "revision": "2026-10-15",
    "Content-Type": "application/vnd.api+json",
    "Accept": "application/vnd.api+json",
}


@dataclass
class FakeClock:
    """Starts a little after a minute boundary so burst and steady windows are predictable."""

    now: float = 1_800_000_000.0 + 0.25

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Running:
    server: ServerThread
    sandbox: KlaviyoSandbox
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def shared_server() -> Iterator[tuple[ServerThread, KlaviyoSandbox]]:
    app = create_app(KlaviyoSandboxConfig(rate_limits_enabled=False, job_step_seconds=0.05))
    with ServerThread(app) as server:
        yield server, app.state.sandbox


@pytest.fixture
def klaviyo(shared_server: tuple[ServerThread, KlaviyoSandbox]) -> Iterator[Running]:
    """The module's sandbox, emptied for this test."""
    server, sandbox = shared_server
    sandbox.reset()
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=10) as client:
        yield Running(server, sandbox, client)


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., Running]]:
    """Start a sandbox with its own config (and optionally a fake clock); stopped after the test."""
    started: list[tuple[ServerThread, httpx.Client]] = []

    def start(config: KlaviyoSandboxConfig | None = None, clock: FakeClock | None = None) -> Running:
        app = create_app(config or KlaviyoSandboxConfig())
        sandbox: KlaviyoSandbox = app.state.sandbox
        if clock is not None:
            sandbox.clock = clock
        server = ServerThread(app).start()
        client = httpx.Client(base_url=server.url, headers=HEADERS, timeout=10)
        started.append((server, client))
        return Running(server, sandbox, client)

    yield start
    for server, client in started:
        client.close()
        server.stop()


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
