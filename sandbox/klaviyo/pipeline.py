"""One Klaviyo API request, in the order Klaviyo's edge applies its checks:
route -> faults -> auth (401) -> revision (400) -> content type (415) -> size (413) -> throttles (429)
-> JSON and schema (400) -> the operation -> RateLimit-* headers -> (slow-response fault)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import Headers
from starlette.responses import Response

from sandbox import exact_json
from sandbox.klaviyo.config import ERROR_STATUSES
from sandbox.klaviyo.errors import ApiError, ErrorItem, api_error
from sandbox.klaviyo.limits import MAX_PROFILE_IMPORT_BYTES, MAX_REQUEST_BYTES
from sandbox.klaviyo.operations import OPERATIONS, Call, Operation, Reply
from sandbox.klaviyo.ratelimit import EndpointBudget
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.klaviyo.validation import validate_body

logger = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"
ACCEPTED_TYPES = {"application/vnd.api+json", "application/json"}
REVISION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$")
AUTH_RE = re.compile(r"^Klaviyo-API-Key (pk_[A-Za-z0-9_\-]+)$")

_ROUTES = [(re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", op.path) + "/?$"), op) for op in OPERATIONS]


def match(method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
    """(operation, path params, path known with another method)."""
    known = False
    for pattern, op in _ROUTES:
        found = pattern.match(path)
        if found:
            if op.method == method:
                return op, found.groupdict(), True
            known = True
    return None, {}, known


def error_response(error: ApiError) -> Response:
    return Response(json.dumps(error.body()), error.status, headers=error.headers, media_type=JSON_API)


async def read_body(receive: Any) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def wait_or_disconnect(receive: Any, seconds: float) -> None:
    """Hold a response back, but stop as soon as the client gives up."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), timeout=seconds)


def drop_connection(scope: dict[str, Any]) -> bool:
    """Close the socket with no response at all (uvicorn's h11 cycle exposes its transport)."""
    cycle = getattr(scope.get("sandbox.raw_send"), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.abort()
    cycle.disconnected = True  # type: ignore[union-attr]  # so uvicorn sends no 500 of its own
    scope["sandbox.dropped"] = True
    return True


class ApiPipeline:
    def __init__(self, sandbox: KlaviyoSandbox) -> None:
        self.sandbox = sandbox
        for op in OPERATIONS:  # every endpoint appears in /_sandbox/stats from the start
            sandbox.limiter.budget(op.key, op.tier)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        sandbox = self.sandbox
        op, params, known = match(scope["method"], scope["path"])
        body = await read_body(receive)
        if op is None:
            status, text = (405, "Method not allowed.") if known else (404, "Not found.")
            await error_response(api_error(status, f"{text} {scope['method']} {scope['path']}", "/"))(
                scope, receive, send
            )
            return
        budget = sandbox.limiter.budget(op.key, op.tier)
        budget.received += 1
        response, slow = await self.respond(scope, op, params, body, budget)
        if response is None:
            return  # connection dropped
        budget.statuses[response.status_code] += 1
        if slow:  # already processed: the client times out not knowing it succeeded
            await wait_or_disconnect(receive, sandbox.faults.slow_seconds)
        await response(scope, receive, send)

    async def respond(
        self,
        scope: dict[str, Any],
        op: Operation,
        params: dict[str, str],
        body: bytes,
        budget: EndpointBudget,
    ) -> tuple[Response | None, bool]:
        sandbox = self.sandbox
        faults = sandbox.faults
        targeted = faults.endpoints is None or op.key in faults.endpoints
        if sandbox.outage_remaining() > 0:
            budget.faults += 1
            return error_response(
                api_error(503, "The service is temporarily unavailable (sandbox outage).", "/")
            ), False
        if targeted:
            injected = await self.inject_fault(scope, budget)
            if injected is not None:
                return injected
        headers = Headers(scope=scope)
        try:
            self.check_protocol(headers, op, body)
            remaining = sandbox.long_throttle_remaining(op.key)
            if remaining:
                budget.throttled += 1
                raise throttled(remaining)
            decision = sandbox.limiter.acquire(
                budget, sandbox.now(), faults.other_integration_share, faults.background_share,
                faults.window_phase_seconds,
            )
            if not decision.allowed:
                raise throttled(decision.retry_after)
            for rule in faults.reject_rules:
                if rule["endpoint"] == op.key:
                    budget.faults += 1
                    raise ApiError([ErrorItem(
                        int(rule.get("status", 400)), str(rule.get("detail", "Injected refusal.")),
                        str(rule.get("pointer", "/data")),
                        code=str(rule["code"]) if "code" in rule else None,  # None: the status's own code
                    )])
            reply = self.run(scope, op, params, body)
            response = Response(
                orjson.dumps(reply.body, option=orjson.OPT_NON_STR_KEYS) if reply.body is not None else None,
                reply.status,
                media_type=JSON_API if reply.body is not None else None,
                headers={
                    "RateLimit-Limit": str(decision.limit),
                    "RateLimit-Remaining": str(decision.remaining),
                    "RateLimit-Reset": str(decision.reset),
                    **reply.headers,
                },
            )
        except ApiError as error:
            return error_response(error), False
        except Exception as exc:  # a sandbox bug must still answer like an API, never kill the server
            logger.exception("Klaviyo sandbox failed on %s", op.key)
            return error_response(api_error(500, f"Sandbox error: {type(exc).__name__}: {exc}", "/")), False
        slow = targeted and faults.slow_rate > 0 and sandbox.dice.random() < faults.slow_rate
        if slow:
            budget.faults += 1
        return response, slow

    async def inject_fault(self, scope: dict[str, Any], budget: EndpointBudget) -> tuple[Response | None, bool] | None:
        """The configured latency, then a dropped connection, a 429 storm or an injected error by the dice;
        None: no fault."""
        sandbox = self.sandbox
        faults = sandbox.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.drop_rate and sandbox.dice.random() < faults.drop_rate and drop_connection(scope):
            budget.faults += 1
            return None, False
        if faults.throttle_rate and sandbox.dice.random() < faults.throttle_rate:
            budget.faults += 1
            budget.throttled += 1
            return error_response(throttled(faults.throttle_retry_after)), False
        roll = sandbox.dice.random() if faults.error_rates else 1.0
        for status in ERROR_STATUSES:
            rate = faults.error_rates.get(status, 0.0)
            if roll < rate:
                budget.faults += 1
                return error_response(api_error(status, f"Injected fault: HTTP {status}.", "/")), False
            roll -= rate
        return None

    def check_protocol(self, headers: Headers, op: Operation, body: bytes) -> None:
        authorization = headers.get("authorization")
        if authorization is None:
            raise ApiError(
                [
                    ErrorItem(
                        401,
                        "Missing Authorization header.",
                        "/",
                        code="not_authenticated",
                        parameter="Authorization",
                    )
                ]
            )
        found = AUTH_RE.match(authorization)
        expected = self.sandbox.config.api_key
        if not found or (expected is not None and found.group(1) != expected):
            raise ApiError(
                [
                    ErrorItem(
                        401,
                        "Incorrect authentication credentials: expected 'Authorization: Klaviyo-API-Key pk_...'.",
                        "/",
                        code="authentication_failed",
                        title="Incorrect authentication credentials.",
                        parameter="Authorization",
                    )
                ]
            )
        revision = headers.get("revision")
        if revision is None or not REVISION_RE.match(revision):
            detail = "Missing revision header." if revision is None else f"Invalid revision header {revision!r}."
            raise ApiError([ErrorItem(400, f"{detail} Send 'revision: YYYY-MM-DD'.", "/", parameter="revision")])
        if op.method in ("POST", "PATCH"):
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type not in ACCEPTED_TYPES:
                raise ApiError(
                    [
                        ErrorItem(
                            415,
                            f"Unsupported media type {content_type or '(none)'!r}; use {JSON_API!r}.",
                            "/",
                            parameter="Content-Type",
                        )
                    ]
                )
            limit = MAX_PROFILE_IMPORT_BYTES if op.path == "/api/profile-import" else MAX_REQUEST_BYTES
            if len(body) > limit:
                raise ApiError([ErrorItem(413, f"The request body is {len(body)} bytes; the limit is {limit}.", "/")])

    def run(self, scope: dict[str, Any], op: Operation, params: dict[str, str], body: bytes) -> Reply:
        parsed: Any = None
        if op.model is not None:
            try:
                parsed = exact_json.loads(body) if body else None
            except ValueError as exc:
                raise ApiError([ErrorItem(400, f"The request body is not valid JSON: {exc}.", "/")]) from None
            validate_body(op.model, parsed)
        headers = Headers(scope=scope)
        host = headers.get("host") or "localhost"
        query_list = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        call = Call(
            sandbox=self.sandbox,
            body=parsed,
            query=dict(query_list),
            query_list=query_list,
            path=scope["path"],
            path_params=params,
            base=f"{scope.get('scheme', 'http')}://{host}",
            now=self.sandbox.now(),
        )
        return op.handler(call)


def throttled(retry_after: int) -> ApiError:
    return ApiError(
        [
            ErrorItem(
                429,
                f"Request was throttled. Expected available in {retry_after} seconds.",
                "/",
                code="throttled",
            )
        ],
        headers={"Retry-After": str(retry_after)},
    )
