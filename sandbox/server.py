"""Serving a sandbox ASGI app: in a background thread for tests, or in the foreground for the CLI."""

from __future__ import annotations

import asyncio
import email.utils
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Clock = Callable[[], float]


def own_clock(app: Any) -> Clock | None:
    """The sandbox's own clock when it keeps one apart from the real time (`app.state.date_clock`)."""
    clock = getattr(getattr(app, "state", None), "date_clock", None)
    return clock if callable(clock) else None


def with_date_header(app: Any) -> Any:
    """The app with its HTTP `Date` header from its own clock: a server's Date says what time it is there, and a
    sandbox whose clock was set elsewhere says so (the poller places an ERP's local stamps by it). Apps without
    a clock of their own are served as they are (uvicorn dates them; the Klaviyo sandbox's dropped connections
    need uvicorn's own `send`)."""
    clock = own_clock(app)
    if clock is None:
        return app

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return

        async def dated(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"date"]
                stamp = email.utils.formatdate(clock(), usegmt=True).encode("latin-1")
                message = {**message, "headers": [*headers, (b"date", stamp)]}
            await send(message)

        await app(scope, receive, dated)

    return asgi


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerThread:
    """An ASGI app on a loopback port in a daemon thread; ``stop()`` shuts it down cleanly."""

    app: Any
    host: str = "127.0.0.1"
    port: int = 0
    _server: uvicorn.Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerThread:
        if self.port == 0:
            self.port = free_port(self.host)
        config = uvicorn.Config(
            with_date_header(self.app), host=self.host, port=self.port, log_level="warning", lifespan="on",
            access_log=False, date_header=own_clock(self.app) is None,
        )
        server = uvicorn.Server(config)  # in a thread, uvicorn leaves signals alone
        self._server = server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"sandbox server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(app: Any, name: str, host: str, port: int) -> None:
    """Foreground serving for `bcsync sandbox ...`: prints the URL, stops cleanly on SIGTERM/SIGINT."""
    if port == 0:
        port = free_port(host)
    config = uvicorn.Config(with_date_header(app), host=host, port=port, log_level="warning", lifespan="on",
                            date_header=own_clock(app) is None)
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        print(f"{name} sandbox listening on http://{host}:{port}", flush=True)

    # uvicorn handles SIGTERM/SIGINT itself and re-raises the signal once it has shut down; with no-op
    # handlers in place that re-raise is harmless and the process exits 0 after a clean shutdown.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)

    async def main() -> None:
        task = asyncio.create_task(announce())
        await server.serve()  # uvicorn installs SIGTERM/SIGINT handlers and exits gracefully
        task.cancel()

    asyncio.run(main())
    print(f"{name} sandbox stopped", flush=True)
