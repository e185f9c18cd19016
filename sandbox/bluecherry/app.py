"""``create_app``: the Blue Cherry sandbox as a Starlette app, with its live-trading and CSV schedules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from sandbox.bluecherry import control
from sandbox.bluecherry.api import list_resource
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.bluecherry.sandbox import BlueCherrySandbox

log = logging.getLogger(__name__)


async def heartbeat(sandbox: BlueCherrySandbox) -> None:
    """Drives live trading and scheduled CSV drops; an error is logged and the loop carries on."""
    cfg = sandbox.config
    tick = max(0.05, cfg.live_tick_seconds)
    next_drop = time.monotonic() + cfg.csv_interval if cfg.csv_interval > 0 else None
    while True:
        await asyncio.sleep(tick)
        try:
            if sandbox.live.running:
                sandbox.live.tick(tick)
            if next_drop is not None and time.monotonic() >= next_drop and cfg.csv_drop_dir:
                next_drop = time.monotonic() + cfg.csv_interval
                await run_in_threadpool(sandbox.drop_csv, None)
        except Exception:  # a bad tick must not stop the demo
            log.exception("Blue Cherry sandbox heartbeat failed")


def create_app(config: BlueCherrySandboxConfig | None = None) -> Starlette:
    sandbox = BlueCherrySandbox(config or BlueCherrySandboxConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(heartbeat(sandbox))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [
        Route("/api/{resource}", list_resource, methods=["GET"]),
        Route("/_sandbox/apply", control.apply, methods=["POST"]),
        Route("/_sandbox/faults", control.faults, methods=["GET", "POST"]),
        Route("/_sandbox/clock", control.clock, methods=["GET", "POST"]),
        Route("/_sandbox/reset", control.reset, methods=["POST"]),
        Route("/_sandbox/live", control.live, methods=["GET", "POST"]),
        Route("/_sandbox/csv-drop", control.csv_drop, methods=["POST"]),
        Route("/_sandbox/stats", control.stats, methods=["GET"]),
        Route("/_sandbox/dump", control.dump, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    app.state.date_clock = lambda: app.state.sandbox.clock.timestamp()  # the Date header: the tenant's time
    return app
