"""The Blue Cherry REST client ("bcapi"): subscription-key auth, `_pgno`/`_pgsize` paging, a `$filter` on
`last_mod`, `_include=all`, and retries with exponential backoff + jitter (honouring Retry-After).

Which resource lives where, and which field holds the modification stamp, come from `config.mapping`; this
module never names a resource or field itself.
"""

from __future__ import annotations

import email.utils
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from config.mapping import Mapping, ResourceMapping, get_mapping
from config.settings import Settings, get_settings
from connectors.bluecherry.errors import (
    BlueCherryAuthError,
    BlueCherryError,
    BlueCherryResponseError,
    BlueCherryRetryableError,
    error_message,
    parse_retry_after,
)
from sync import json_text

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 200  # bcapi refuses larger pages
Record = dict[str, Any]


class _BackoffOrRetryAfter:
    """Exponential backoff with full jitter, but never shorter than the server's Retry-After."""

    def __init__(self, base: float, maximum: float) -> None:
        self.jitter = wait_random_exponential(multiplier=base, max=maximum)
        self.maximum = maximum

    def __call__(self, state: RetryCallState) -> float:
        wait = float(self.jitter(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, BlueCherryRetryableError) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self.maximum))
        return wait


def _read_ahead(page: Callable[[int], list[Record]], size: int) -> Iterator[list[Record]]:
    """Pages 1, 2, ... from `page`, the next one asked for on a thread while the caller holds the current one.
    The thread is a daemon: a caller that stops early (an error, Ctrl-C) is held neither by the generator's end
    nor at the process's exit by a request still in flight, whose result nobody reads."""
    pending: Future[list[Record]] | None = _fetch(page, 1)
    number = 1
    while pending is not None:
        records = pending.result()
        number += 1
        pending = _fetch(page, number) if len(records) >= size else None
        yield records


def _fetch(page: Callable[[int], list[Record]], number: int) -> Future[list[Record]]:
    """Page `number` on a daemon thread of its own."""
    future: Future[list[Record]] = Future()

    def run() -> None:
        try:
            future.set_result(page(number))
        except BaseException as exc:  # noqa: BLE001  raised in the caller's thread, when it asks for the page
            future.set_exception(exc)

    threading.Thread(target=run, name=f"bluecherry-read-ahead-{number}", daemon=True).start()
    return future


class BlueCherryClient:
    """One pooled HTTP client per process; thread-safe for reads (httpx.Client is)."""

    def __init__(
        self,
        base_url: str,
        subscription_key: str,
        timeout: float = 30.0,
        max_attempts: int = 6,
        *,
        backoff_base_seconds: float = 0.5,
        backoff_max_seconds: float = 60.0,
        mapping: Mapping | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max(1, max_attempts)
        self.mapping = mapping or get_mapping()
        self._wait = _BackoffOrRetryAfter(backoff_base_seconds, backoff_max_seconds)
        # Blue Cherry's clock as its last answer gave it (HTTP Date): what "now" is for the tenant's stamps
        self.server_time: datetime | None = None
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Ocp-Apim-Subscription-Key": subscription_key, "Accept": "application/json"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=10),
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, mapping: Mapping | None = None
    ) -> BlueCherryClient:
        settings = settings or get_settings()
        return cls(
            settings.bluecherry_base_url,
            settings.bluecherry_subscription_key.get_secret_value(),
            timeout=settings.bluecherry_timeout_seconds,
            max_attempts=settings.bluecherry_max_attempts,
            mapping=mapping,
        )

    # --- reads ----------------------------------------------------------------------------------
    def iter_pages(
        self,
        resource: ResourceMapping,
        since_local: str | None,
        include_children: bool | None = None,
        page_size: int | None = None,
        extra_filter: str | None = None,
        *,
        read_ahead: bool = False,
    ) -> Iterator[list[Record]]:
        """Yield each page of `resource` (records with ``last_mod >= since_local``, tenant-local time).

        Pages start at 1; the last page is the first one shorter than the page size (bcapi gives no count). A
        resource whose mapping says ``not_found = "empty"`` reads a 404 as an empty page (tenants that answer
        404 while a resource, or a filter, has no records), which ends the read.

        ``read_ahead``: while the caller works on a full page, the next one is already being asked for (one
        request in flight, on a thread: the wait for Blue Cherry overlaps the caller's work instead of
        following it). Only a full page is read past, as the plain loop would; a page's error is raised when
        the caller asks for that page. For callers that read every page (the backfills), not for a caller that
        stops early.
        """
        size = min(page_size or resource.page_size, MAX_PAGE_SIZE)
        include = resource.include_children if include_children is None else include_children
        clauses = []
        if since_local is not None:
            clauses.append(f"{resource.last_mod} ge '{since_local}'")
        if extra_filter:
            clauses.append(extra_filter)

        def page(number: int) -> list[Record]:
            params: dict[str, str | int] = {"_pgno": number, "_pgsize": size}
            if clauses:
                params["$filter"] = " and ".join(clauses)
            if include:
                params["_include"] = "all"
            body = self._get_json(self._path(resource), params, missing_ok=resource.not_found == "empty")
            return self._records(body, resource)

        if not read_ahead:
            number = 1
            while True:
                records = page(number)
                yield records
                if len(records) < size:
                    return
                number += 1
        yield from _read_ahead(page, size)

    def get(self, resource: ResourceMapping, pkey: str | int) -> Record | None:
        """One record by its pkey (children included), or None when bcapi has no such record."""
        params: dict[str, str | int] = {"pkey": pkey}
        if resource.include_children:
            params["_include"] = "all"
        records = self._records(self._get_json(self._path(resource), params, missing_ok=True), resource)
        return records[0] if records else None

    def read_body(self, path: str, params: dict[str, str | int]) -> Any:
        """One GET of ``/api/<path>``: its JSON body as sent, with the client's auth, retries and errors (a 404
        is a `BlueCherryResponseError` with status 404). For reading a tenant the mapping does not describe yet
        (`bcsync mapping suggest` and `check`): where its records are in the body is the caller's to find."""
        return self._get_json(f"/api/{path}", params)

    def locations(self) -> list[Record]:
        """The flat `Location` lookup (``{"data": [...]}``): every warehouse with its codes and flags."""
        resource = self.mapping.resources.location
        return [rec for page in self.iter_pages(resource, None, include_children=False) for rec in page]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BlueCherryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------------
    @staticmethod
    def _path(resource: ResourceMapping) -> str:
        return f"/api/{resource.path}"

    def _get_json(self, path: str, params: dict[str, str | int], missing_ok: bool = False) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(BlueCherryRetryableError),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "Blue Cherry %s: attempt %d failed (%s); retrying",
                path, state.attempt_number, state.outcome.exception() if state.outcome else "?",
            ),
        )
        return retrying(self._get_once, path, params, missing_ok)

    def _get_once(self, path: str, params: dict[str, str | int], missing_ok: bool) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise BlueCherryRetryableError(f"timed out: {exc!r}", url=url) from exc
        except httpx.TransportError as exc:
            raise BlueCherryRetryableError(f"connection failed: {exc!r}", url=url) from exc
        status = response.status_code
        self.server_time = _server_time(response) or self.server_time
        if status < 400:
            try:
                return json_text.loads(response.content)  # orjson: a backfill reads hundreds of thousands of records
            except ValueError as exc:
                raise BlueCherryResponseError(
                    f"response is not JSON: {response.text[:200]!r}", status=status, url=url
                ) from exc
        message = error_message(_json_or_text(response), default=response.reason_phrase or "error")
        if status in (401, 403):
            raise BlueCherryAuthError(
                f"Blue Cherry refused the subscription key: {message}", status=status, url=url
            )
        if status == 429 or status >= 500:
            raise BlueCherryRetryableError(
                message, status=status, url=url,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status == 404 and missing_ok:
            return None  # nothing there: no records, whatever the envelope
        raise BlueCherryResponseError(message, status=status, url=url)

    @staticmethod
    def _records(body: Any, resource: ResourceMapping) -> list[Record]:
        """Records out of ``{"data": {"header": [...]}}`` (resources) or ``{"data": [...]}`` (lookups), or at the
        resource's own `envelope` path (e.g. ``result.items``) when the mapping names one."""
        if resource.envelope and body is not None:
            data = body
            for part in resource.envelope.split("."):
                if not isinstance(data, dict) or part not in data:  # a wrong envelope must not read as "empty"
                    raise BlueCherryResponseError(
                        f"no '{resource.envelope}' (mapping resources.*.envelope) in the response of "
                        f"'{resource.path}': {str(body)[:200]}", url=resource.path)
                data = data[part]
        else:
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(data, dict):
                data = data.get("header", [])
        if data is None:
            data = []
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BlueCherryResponseError(
                f"unexpected response shape for '{resource.path}': {str(body)[:200]}", url=resource.path
            )
        return data


def _server_time(response: httpx.Response) -> datetime | None:
    """The server's clock from its HTTP `Date` header (aware UTC), or None."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


__all__ = [
    "BlueCherryAuthError",
    "BlueCherryClient",
    "BlueCherryError",
    "BlueCherryResponseError",
    "BlueCherryRetryableError",
]
