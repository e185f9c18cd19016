"""`create_app()`: the Klaviyo sandbox as a Starlette app (API under /api, controls under /_sandbox)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig
from sandbox.klaviyo.pipeline import ApiPipeline
from sandbox.klaviyo.recorder import Recorder
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.klaviyo.tamper import tamper


class KlaviyoSandboxApp(Starlette):
    """Starlette for the control routes; /api/* goes straight to the pipeline, which needs the server's
    own `send` to drop connections on demand."""

    pipeline: ApiPipeline
    recorder: Recorder | None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["sandbox.raw_send"] = send
        inner = self.pipeline if scope["path"].startswith("/api/") else super().__call__
        if self.recorder is not None:
            await self.recorder.around(scope, receive, send, inner)
        else:
            await inner(scope, receive, send)


def _sandbox(request: Request) -> KlaviyoSandbox:
    sandbox: KlaviyoSandbox = request.app.state.sandbox
    return sandbox


async def get_state(request: Request) -> JSONResponse:
    summary = request.query_params.get("summary", "") in ("1", "true", "yes")
    return JSONResponse(_sandbox(request).state(summary=summary))


async def post_reset(request: Request) -> JSONResponse:
    _sandbox(request).reset()
    return JSONResponse({"reset": True})


async def get_faults(request: Request) -> JSONResponse:
    return JSONResponse(_sandbox(request).faults_json())


async def post_faults(request: Request) -> JSONResponse:
    sandbox = _sandbox(request)
    try:
        changes = json.loads(await request.body() or b"{}")
        if not isinstance(changes, dict):
            raise ValueError("the body must be a JSON object")
        base = FaultSettings() if changes.pop("clear", False) else sandbox.faults
        sandbox.set_faults(base.merged(changes))
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(sandbox.faults_json())


async def post_tamper(request: Request) -> JSONResponse:
    try:
        results = tamper(_sandbox(request), json.loads(await request.body() or b"null"))
    except ValueError as exc:  # TamperError, or a body that is not JSON
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"results": results})


async def post_attribution(request: Request) -> JSONResponse:
    """Campaigns, flows and their messages, and conversion events attributed to them (sandbox.klaviyo.attribution)."""
    sandbox = _sandbox(request)
    try:
        made = sandbox.attribution.define(json.loads(await request.body() or b"null"), sandbox.events)
    except ValueError as exc:  # AttributionError, or a body that is not JSON
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(made)


async def get_stats(request: Request) -> JSONResponse:
    return JSONResponse(_sandbox(request).stats())


async def post_complete_jobs(request: Request) -> JSONResponse:
    sandbox = _sandbox(request)
    sandbox.jobs.advance(sandbox.now(), finish=True)
    return JSONResponse({"pending": len(sandbox.jobs.pending)})


def create_app(config: KlaviyoSandboxConfig | None = None) -> Starlette:
    config = config or KlaviyoSandboxConfig()
    sandbox = KlaviyoSandbox(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def tick() -> None:  # bulk jobs progress even when nobody polls them
            while True:
                await asyncio.sleep(config.job_step_seconds / 2)
                sandbox.jobs.advance(sandbox.now())

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            ticker.cancel()
            if app_recorder is not None:
                app_recorder.close()

    app = KlaviyoSandboxApp(
        routes=[
            Route("/_sandbox/state", get_state, methods=["GET"]),
            Route("/_sandbox/reset", post_reset, methods=["POST"]),
            Route("/_sandbox/faults", get_faults, methods=["GET"]),
            Route("/_sandbox/faults", post_faults, methods=["POST"]),
            Route("/_sandbox/stats", get_stats, methods=["GET"]),
            Route("/_sandbox/complete-jobs", post_complete_jobs, methods=["POST"]),
            Route("/_sandbox/tamper", post_tamper, methods=["POST"]),
            Route("/_sandbox/attribution", post_attribution, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app_recorder = Recorder(config.record_path) if config.record_path else None
    app.state.sandbox = sandbox
    app.pipeline = ApiPipeline(sandbox)
    app.recorder = app_recorder
    return app
