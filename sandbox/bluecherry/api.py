"""The bcapi surface: ``GET /api/<resource>`` with the reference's paging, filtering and envelopes."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bluecherry.filters import FilterError, compile_filter
from sandbox.bluecherry.sandbox import RESOURCES, BlueCherrySandbox

FLAT = ("Location",)  # small lookups answer {"data": [...]}
MAX_PAGE = 200


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"errorMessage": message}]}, status_code=status, headers=headers)


def without_children(record: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in record.items()
            if k in keep or not (isinstance(v, dict) and ("rows" in v or "rows-i" in v))}


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got '{raw}'") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


HANG_STEP_SECONDS = 0.05


async def held_while_hung(sandbox: BlueCherrySandbox, request: Request) -> bool:
    """The ``hang`` fault: hold the request with no answer at all (not even headers) until the fault is set
    back to 0. False when the client gave up meanwhile (its read timeout), so nothing is left waiting.
    Sleeps in small steps on the event loop: other requests and /_sandbox routes are served meanwhile."""
    if not sandbox.faults.config.hang:
        return True
    sandbox.faults.injected["hang"] += 1
    while sandbox.faults.config.hang:
        if await request.is_disconnected():
            return False
        await asyncio.sleep(HANG_STEP_SECONDS)
    return not await request.is_disconnected()


async def list_resource(request: Request) -> Response:
    sandbox: BlueCherrySandbox = request.app.state.sandbox
    resource = request.path_params["resource"]
    if not await held_while_hung(sandbox, request):
        return Response(status_code=204)  # nobody reads it: the client disconnected
    response = await _list(sandbox, request, resource)
    sandbox.statuses[str(response.status_code)] += 1
    return response


def refused_key(sandbox: BlueCherrySandbox, key: str | None) -> JSONResponse | None:
    """The gateway's 401 for a missing or wrong subscription key, else None."""
    if key is None:
        return JSONResponse(
            {
                "statusCode": 401,
                "message": "Access denied due to missing subscription key. "
                "Make sure to include subscription key when making requests to an API.",
            },
            401,
        )
    if key != sandbox.config.subscription_key:
        return JSONResponse(
            {
                "statusCode": 401,
                "message": "Access denied due to invalid subscription key. "
                "Make sure to provide a valid key for an active subscription.",
            },
            401,
        )
    return None


async def _list(sandbox: BlueCherrySandbox, request: Request, served: str) -> Response:
    """``served`` is the path the client asked for: the dialect's name of the resource."""
    refused = refused_key(sandbox, request.headers.get("Ocp-Apim-Subscription-Key"))
    if refused is not None:
        return refused
    dialect = sandbox.dialect
    resource = dialect.resource_of(served) or ""
    if resource not in RESOURCES:
        known = ", ".join(dialect.served_name(r) for r in RESOURCES)
        return JSONResponse({"message": f"Resource '{served}' not found (known: {known})"}, 404)
    sandbox.requests[served] += 1
    fault = sandbox.faults.request_fault()
    if fault is not None:
        status, fault_headers = fault
        injected = {"statusCode": status, "message": "Injected fault"}
        return JSONResponse(injected, status, headers=fault_headers)
    delay = sandbox.faults.slow_seconds()
    if delay:
        await asyncio.sleep(delay)
    try:
        page = int_param(request, "_pgno", 1, 1, 10**9)
        size = int_param(request, "_pgsize", MAX_PAGE, 1, MAX_PAGE)
        resolve = None if dialect.identity else lambda name: dialect.column(resource, name)
        where, params = compile_filter(request.query_params.get("$filter"), resolve)
        pkey = request.query_params.get("pkey")
        if pkey is not None:
            if not pkey.isdigit():
                raise ValueError(f"pkey must be an integer, got '{pkey}'")
            where, params = (f"{where} AND pkey = ?" if where else "pkey = ?"), [*params, int(pkey)]
    except (ValueError, FilterError) as exc:
        return error(400, str(exc))
    include = request.query_params.get("_include", "").lower() == "all"
    if include and dialect.identity and not sandbox.faults.may_damage(resource):
        as_stored = _page_as_stored(sandbox, resource, where, params, page, size)
        if as_stored is not None:
            return as_stored
    with sandbox.store.lock:
        rows = sandbox.store.page(resource, where, params, (page - 1) * size, size)
    keep = dialect.header_children(resource)  # rows the dialect shows as header fields: served without _include
    records = [r.record() if include else without_children(r.record(), keep) for r in rows]
    records, notes = sandbox.faults.damage(resource, records)
    if not dialect.identity:
        records = [dialect.render(resource, record) for record in records]
    sandbox.served += len(records)
    _modify_while_paging(sandbox, resource, [r.pkey for r in rows], size)
    if pkey is not None and not records:
        return JSONResponse({"message": f"{served} with pkey {pkey} not found"}, 404)
    headers: dict[str, str] | None = {"X-Sandbox-Malformed": ",".join(notes)} if notes else None
    return page_response(sandbox, resource, served, records, headers)


def _modify_while_paging(sandbox: BlueCherrySandbox, resource: str, pkeys: list[int], size: int) -> None:
    """The fault that moves some of a full page's records to the end while the client pages."""
    touch = sandbox.faults.config.modify_while_paging
    if touch and len(pkeys) == size:  # the client will read the next page: move some of this one to the end
        with sandbox.store.lock:
            sandbox.store.touch(resource, pkeys[:touch], sandbox.clock.now_local())
        sandbox.faults.injected["modify_while_paging"] += min(touch, len(pkeys))


def _page_as_stored(sandbox: BlueCherrySandbox, resource: str, where: str, params: list[Any], page: int,
                    size: int) -> Response | None:
    """A page of whole records (``_include=all``, the default dialect, no record damaged) written from the rows'
    stored JSON text without parsing it: parsing and writing the records again was two thirds of the sandbox's
    time serving such a page, which bounded a backfill's documents phase (issue 18). None: serve it the general
    way (an empty page, or a row `records_as_stored` will not write)."""
    with sandbox.store.lock:
        stored = sandbox.store.page_stored(resource, where, params, (page - 1) * size, size)
    records = records_as_stored(stored)
    if not stored or records is None:
        return None
    keys = sandbox.dialect.envelope(resource, "data" if resource in FLAT else "data.header").split(".")
    opening = b"".join(b"{" + orjson.dumps(key) + b":" for key in keys)
    sandbox.served += len(stored)
    _modify_while_paging(sandbox, resource, [pkey for pkey, _, _ in stored], size)
    return Response(opening + records + b"}" * len(keys), media_type="application/json")


def records_as_stored(stored: list[tuple[int, str, str]]) -> bytes | None:
    """The JSON array of `Row.record()` for rows (pkey, last_mod, body text), written from the body's text: pkey
    first, last_mod last. None when a body is not plainly an object the text can be spliced into (a body naming
    pkey or last_mod itself, or holding NaN or Infinity, which the standard library writes and JSON has not)."""
    parts: list[str] = []
    for pkey, last_mod, body in stored:
        if (not body.startswith("{") or not body.endswith("}") or '"pkey":' in body or '"last_mod":' in body
                or "NaN" in body or "Infinity" in body):
            return None
        inner = body[1:-1]
        parts.append(f'{{"pkey":{pkey},{inner},"last_mod":' if inner else f'{{"pkey":{pkey},"last_mod":')
        parts.append(orjson.dumps(last_mod).decode())
        parts.append("},")
    text = "[" + "".join(parts).removesuffix(",") + "]"
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: the general way decides what it becomes
        return None


class PageResponse(JSONResponse):
    """A page as starlette's JSONResponse renders it (compact UTF-8 JSON), encoded by orjson: with the standard
    library the encoding was a third of the sandbox's time serving a page, and bounded a backfill's reading (issue
    18). The same JSON, not always the same bytes (orjson writes 1e-7 where Python writes 1e-07); what orjson
    refuses (an integer beyond 64 bits, a key that is not a string) is rendered by starlette, as before."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except (orjson.JSONEncodeError, TypeError):
            return super().render(content)


def page_response(sandbox: BlueCherrySandbox, resource: str, served: str, records: list[dict[str, Any]],
                  headers: dict[str, str] | None) -> JSONResponse:
    """A page in the tenant's envelope, or the 404 of a tenant that answers "no data" with one."""
    dialect = sandbox.dialect
    if not records and dialect.empty_404(resource):
        return JSONResponse({"statusCode": 404, "message": f"No records found for {served}"}, 404)
    body: Any = records
    for key in reversed(dialect.envelope(resource, "data" if resource in FLAT else "data.header").split(".")):
        body = {key: body}
    return PageResponse(body, headers=headers)
