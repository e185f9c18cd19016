"""Control endpoints under ``/_sandbox/`` (no auth): apply, faults, clock, reset, live, CSV drop, stats, dump."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bluecherry.api import error
from sandbox.bluecherry.sandbox import BlueCherrySandbox
from sandbox.bluecherry.tenant import OpError


def sandbox_of(request: Request) -> BlueCherrySandbox:
    return request.app.state.sandbox


async def body_of(request: Request, default: Any) -> Any:
    raw = await request.body()
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"request body is not JSON: {exc}") from None


async def apply(request: Request) -> Response:
    try:
        payload = await body_of(request, [])
        ops = payload.get("ops") if isinstance(payload, dict) else payload
        touched = sandbox_of(request).apply(ops)
    except (ValueError, OpError) as exc:
        return error(400, str(exc))
    return JSONResponse({"touched": touched})


async def faults(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "POST":
        try:
            values = await body_of(request, {})
            if not isinstance(values, dict):
                raise ValueError("faults: expected a JSON object of settings")
            sandbox.update_faults(values)
        except ValueError as exc:
            return error(400, str(exc))
    return JSONResponse({**sandbox.faults.config.as_dict(), "injected": dict(sandbox.faults.injected)})


async def clock(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "POST":
        try:
            values = await body_of(request, {})
            if not isinstance(values, dict):
                raise ValueError("clock: expected a JSON object")
            unknown = set(values) - {"now", "fold", "timezone", "freeze", "advance"}
            if unknown:
                raise ValueError(f"clock: unknown keys {sorted(unknown)} (use now, fold, timezone, freeze, advance)")
            c = sandbox.clock
            if "timezone" in values:
                c.set_timezone(str(values["timezone"]))
            if "freeze" in values:
                c.freeze() if values["freeze"] else c.unfreeze()
            if "now" in values:
                c.set_local(str(values["now"]), int(values.get("fold", 0)))
            if "advance" in values:
                c.advance(float(values["advance"]))
        except (ValueError, TypeError) as exc:
            return error(400, str(exc))
    return JSONResponse(sandbox.clock.as_dict())


async def reset(request: Request) -> Response:
    sandbox = sandbox_of(request)
    try:
        sizes = await body_of(request, {})
        allowed = {"seed", "customers", "styles", "orders", "history_days"}
        if (
            not isinstance(sizes, dict)
            or set(sizes) - allowed
            or not all(isinstance(v, int) and v >= 0 for v in sizes.values())
        ):
            raise ValueError(f"reset: expected an object of non-negative integers among {sorted(allowed)}")
    except ValueError as exc:
        return error(400, str(exc))
    generated = await run_in_threadpool(sandbox.reset, sizes)
    return JSONResponse({"generated": generated})


async def live(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "POST":
        try:
            values = await body_of(request, {})
            if not isinstance(values, dict):
                raise ValueError('live: expected {"running": bool, "rates": {...}}')
            sandbox.live.rates.update(values.get("rates", {}))
            if "running" in values:
                sandbox.live.running = bool(values["running"])
        except ValueError as exc:
            return error(400, str(exc))
    lt = sandbox.live
    return JSONResponse(
        {"running": lt.running, "rates": lt.rates.as_dict(), "applied": lt.applied, "refused": lt.failed}
    )


async def csv_drop(request: Request) -> Response:
    sandbox = sandbox_of(request)
    try:
        values = await body_of(request, {})
        folder = values.get("dir") if isinstance(values, dict) else None
        files = await run_in_threadpool(sandbox.drop_csv, folder)
    except (ValueError, OSError) as exc:
        return error(400, str(exc))
    return JSONResponse({"files": files})


async def stats(request: Request) -> Response:
    return JSONResponse(sandbox_of(request).stats())


async def dump(request: Request) -> Response:
    """The whole tenant in one consistent read (``BlueCherrySandbox.dump``). Read and encoded in a worker
    thread: a big tenant takes seconds, and the event loop keeps serving meanwhile (writers wait for the lock)."""
    sandbox = sandbox_of(request)

    def encoded() -> bytes:
        return json.dumps(sandbox.dump(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    return Response(await run_in_threadpool(encoded), media_type="application/json")
