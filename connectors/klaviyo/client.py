"""The Klaviyo HTTP client: one pooled connection set, the fleet's rate budget, and errors classified.

Every request: refuse if the endpoint is parked; take a slot from the fleet limiter (waiting in the
worker's slot only up to `max_inline_wait`, else `RateLimitedLocally`); send; classify the answer into
`KlaviyoResponse` or one of `errors`' classes. The client never retries: the task layer re-schedules
through its delayed-retry schedule, so a worker slot is never held by a long backoff.
"""

from __future__ import annotations

import functools
import json as _json
import logging
import math
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from connectors.klaviyo import builders
from connectors.klaviyo.endpoints import CATALOG_JOB_PATHS, endpoint
from connectors.klaviyo.errors import (
    DuplicateProfileError,
    EndpointParkedError,
    KlaviyoError,
    PermanentError,
    RateLimitedLocally,
    ThrottledError,
    TransientError,
    creation_found_existing,
    parse_error_items,
    rows_from_pointers,
)
from connectors.klaviyo.limiter import FleetRateLimiter

log = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"
DEFAULT_THROTTLE_SECONDS = 1.0  # a 429 without a usable Retry-After
MAX_RETRY_AFTER_SECONDS = 7 * 86400.0


@dataclass
class KlaviyoResponse:
    status: int
    data: Any  # the parsed JSON body, or None (202 with an empty body)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        """`data.id` of a single-resource answer (a bulk job's id, a created profile's id)."""
        if isinstance(self.data, dict) and isinstance(self.data.get("data"), dict):
            value = self.data["data"].get("id")
            return None if value is None else str(value)
        return None

    @property
    def created(self) -> bool:
        return self.status == 201

    @property
    def partial_failure(self) -> str | None:
        """`X-Klaviyo-Partial-Failure`: what Klaviyo accepted the request without (e.g. a phone it could not
        validate). Named in Klaviyo's announcement of its phone validation, in neither the OpenAPI spec nor
        the API reference: read when present, never relied on."""
        for name, value in self.headers.items():
            if name.lower() == "x-klaviyo-partial-failure":
                return value
        return None


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: an integer (Klaviyo's form), a decimal, or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # "inf"/"nan" are no delay; an absurd one is capped so a park's end stays a real date
        return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS) if math.isfinite(seconds) else None
    try:
        return min(max(0.0, parsedate_to_datetime(value).timestamp() - time.time()), MAX_RETRY_AFTER_SECONDS)
    except (TypeError, ValueError, IndexError):
        return None


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except ValueError:  # orjson.JSONDecodeError is a ValueError
        return None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context for Klaviyo. httpx builds one per client, loading the CA bundle (about 25 ms
    of CPU) and importing its transport on the first; a worker builds this before it forks its pool processes
    (`tasks.delivery`), so each inherits both instead of paying for them on its first event."""
    import httpcore  # noqa: F401, PLC0415  what httpx imports on its first client, imported with the context

    return httpx.create_ssl_context()


# `KlaviyoClient._send` reuses two of httpx's private methods, so its URL and transport follow the client's own
# rules: an httpx without them (a later release) gets the whole `Client.request` path, as before
DIRECT_REQUESTS = hasattr(httpx.Client, "_merge_url") and hasattr(httpx.Client, "_transport_for_url")


# A bulk job's status read never waits for its slot in the worker: refused, it raises RateLimitedLocally with
# its turn and the caller polls again then from the delayed schedule. At a job endpoint's ceiling (a catalog
# job's read has the same 750/min as its creation) a read waiting inline held one of the lane's pool processes,
# and the lane's other work (every family's deliveries) queued behind it.
READ_BACK_INLINE_WAIT = 0.0


class KlaviyoClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        revision: str,
        limiter: FleetRateLimiter | None,
        lane: str,
        timeout: float = 20,
        max_connections: int = 20,
        max_inline_wait: float = 1.5,
        park_after: float = 900,
        transport: httpx.BaseTransport | None = None,
        on_throttle: Callable[[str], None] | None = None,
    ) -> None:
        self.limiter = limiter
        self.on_throttle = on_throttle  # told the endpoint of every 429 (the fleet counts them in Redis)
        self.lane = lane
        self.max_inline_wait = max_inline_wait
        self.park_after = park_after
        self._extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        self._routes: dict[str, tuple[httpx.URL, httpx.BaseTransport]] = {}  # endpoint key -> its URL, transport
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": f"Klaviyo-API-Key {api_key}",
                "revision": revision,
                "Accept": JSON_API,
                "Content-Type": JSON_API,
                "User-Agent": "bcsync",
            },
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
            verify=tls_context(),
        )

        self._headers = self._http.headers  # the client's own: ours over httpx's defaults (Accept-Encoding, ...)

    def __repr__(self) -> str:  # never show the key
        return f"KlaviyoClient({str(self._http.base_url)!r}, lane={self.lane!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KlaviyoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the request cycle -----------------------------------------------------------------------

    def _take_slot(self, key: str, inline_wait: float | None = None) -> None:
        if self.limiter is None:
            return
        most = self.max_inline_wait if inline_wait is None else min(inline_wait, self.max_inline_wait)
        waited = 0.0  # the inline wait is capped in total, not per refusal
        while True:
            # a wait longer than what is left of the inline wait takes a place in the endpoint's line: the
            # delay raised below is then this request's turn, not the window's end every waiter shares
            got = self.limiter.acquire(key, self.lane, inline_wait=most - waited)
            if got.park is not None:  # checked inside the acquire script: no round trip of its own
                park = got.park
                raise EndpointParkedError(
                    f"{key}: endpoint parked ({park.reason})", until=park.until, reason=park.reason, endpoint=key
                )
            wait = got.wait
            if wait == 0:
                return
            if waited + wait > most:
                raise RateLimitedLocally(
                    f"{key}: fleet budget for lane {self.lane} used up for {wait:.3f}s",
                    delay=wait,
                    endpoint=key,
                )
            time.sleep(wait)
            waited += wait

    def request(
        self,
        key: str,
        *,
        path: str | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        url: str | None = None,
        body: builders.Encoded | None = None,
        inline_wait: float | None = None,
    ) -> KlaviyoResponse:
        """One call to endpoint `key` (path from the registry unless given; `url` for a `links.next`). `body` is
        a builder's body, sent as the bytes it was serialised to once; `json` a plain JSON-ready value.
        `inline_wait`: the most this call waits for its slot (never more than the client's `max_inline_wait`)."""
        ep = endpoint(key)
        self._take_slot(key, inline_wait)
        target = url or path or ep.path
        content = body.raw if body is not None else (builders.encode(json) if json is not None else None)
        try:
            if params is None and url is None:
                response = self._send(ep.method, key if path is None else None, target, content)
            else:
                response = self._http.request(ep.method, target, content=content, params=params)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{key}: timeout ({type(exc).__name__})", endpoint=key) from None
        except httpx.TransportError as exc:
            raise TransientError(f"{key}: connection error ({type(exc).__name__})", endpoint=key) from None
        return self._classify(key, response)

    def _send(self, method: str, route: str | None, path: str, content: bytes | None) -> httpx.Response:
        """A request straight to the client's transport: what `httpx.Client.request` does on top (merging
        defaults, cookies, auth and redirect handling, none of which a Klaviyo call uses) was about 45% of the
        request's CPU, the largest single cost of a single event. The URL and the transport (a proxy's, if the
        environment names one) are the client's own, worked out by its own rules once per endpoint (`route`: the
        registry's path) or per call (a path with an id in it)."""
        found = self._routes.get(route) if route is not None else None
        if found is None:
            if not DIRECT_REQUESTS:
                return self._http.request(method, path, content=content)
            target = self._http._merge_url(path)  # the client's rule for base_url + path
            found = (target, self._http._transport_for_url(target))  # and for proxies
            if route is not None:
                self._routes[route] = found
        if self._http.is_closed:
            raise RuntimeError("the Klaviyo client is closed")
        target, transport = found
        request = httpx.Request(method, target, headers=self._headers, content=content, extensions=self._extensions)
        response = transport.handle_request(request)
        response.request = request
        try:
            response.read()
        finally:
            response.close()
        return response

    def _classify(self, key: str, response: httpx.Response) -> KlaviyoResponse:
        status = response.status_code
        headers = dict(response.headers)
        if self.limiter is not None and status != 429:  # Klaviyo's RateLimit-* come with every answer but a 429
            self.limiter.observe(key, headers)
        if 200 <= status < 300:
            return KlaviyoResponse(status, _json_or_none(response), headers)
        errors = parse_error_items(_json_or_none(response))
        codes = ",".join(item.code for item in errors if item.code) or "-"
        message = f"{key}: HTTP {status} ({codes})"
        if status == 429:
            if self.on_throttle is not None:
                try:
                    self.on_throttle(key)
                except Exception:  # noqa: BLE001  counting is for monitoring: it must never change the outcome
                    log.warning("could not count a 429 of %s", key, exc_info=True)
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            pause = retry_after if retry_after is not None else DEFAULT_THROTTLE_SECONDS
            if self.limiter is not None:
                if pause > self.park_after:
                    until = self.limiter.server_time() + pause
                    reason = f"429 with Retry-After {pause:.0f}s (over {self.park_after:.0f}s)"
                    self.limiter.park(key, until, reason)
                    raise EndpointParkedError(
                        message + f" parked: {reason}",
                        until=until,
                        reason=reason,
                        status=status,
                        errors=errors,
                        endpoint=key,
                    )
                self.limiter.pause(key, pause, throttled=True)  # and cuts the fleet's share
            elif pause > self.park_after:
                until = time.time() + pause
                raise EndpointParkedError(
                    message,
                    until=until,
                    reason="long Retry-After",
                    status=status,
                    errors=errors,
                    endpoint=key,
                )
            raise ThrottledError(message, retry_after=pause, status=status, errors=errors, endpoint=key)
        if status >= 500 or status == 408:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise TransientError(message, retry_after=retry_after, status=status, errors=errors, endpoint=key)
        if status == 409 and any(item.code == "duplicate_profile" for item in errors):
            duplicate = next(
                (str(i.meta["duplicate_profile_id"]) for i in errors if i.meta.get("duplicate_profile_id")),
                None,
            )
            raise DuplicateProfileError(
                message, duplicate_profile_id=duplicate, status=status, errors=errors, endpoint=key
            )
        raise PermanentError(message, status=status, errors=errors, endpoint=key)

    def _send_bulk(self, key: str, bulk: builders.BulkBody, path: str | None = None) -> KlaviyoResponse:
        """Send one bulk body; a 4xx names the input payloads its row pointers point at."""
        try:
            return self.request(key, path=path, body=bulk)
        except KlaviyoError as exc:
            _attach_payload_rows(exc, bulk)
            raise

    # --- profiles --------------------------------------------------------------------------------

    def import_profile(self, payload: dict[str, Any]) -> KlaviyoResponse:
        """Create (201) or update (200) a profile; 409 duplicate_profile -> DuplicateProfileError."""
        return self.request("profile-import", body=builders.profile_import_body(payload))

    def bulk_import_profiles(self, payloads: Sequence[dict[str, Any]], list_id: str | None = None) -> str:
        """Start a profile bulk import job (<= 10,000 profiles); returns the job id."""
        response = self._send_bulk(
            "profile-bulk-import-jobs", builders.bulk_profile_import_body(payloads, list_id)
        )
        if response.id is None:
            raise TransientError(
                "profile-bulk-import-jobs: 2xx without a job id",
                status=response.status,
                endpoint="profile-bulk-import-jobs",
            )
        return response.id

    def get_profile_import_job(self, job_id: str) -> dict[str, Any]:
        """The job resource: `attributes.status` (queued|processing|complete|cancelled) and counts."""
        ep = endpoint("profile-bulk-import-jobs:get")
        data = self.request(ep.key, path=ep.url_path(job_id), inline_wait=READ_BACK_INLINE_WAIT).data
        return dict(data.get("data") or {}) if isinstance(data, dict) else {}

    def iter_profile_import_errors(self, job_id: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every per-row error of a profile bulk import job (`attributes.code/title/detail/source/
        original_payload`), following `links.next`."""
        ep = endpoint("profile-bulk-import-jobs:errors")
        yield from self._paginate(ep.key, ep.url_path(job_id), {"page[size]": page_size})

    def get_profiles(
        self, filter: str, additional_fields: list[str] | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Profiles matching a Klaviyo filter, e.g. `any(email,["a@x.com","b@y.com"])`, every page."""
        params: dict[str, Any] = {"filter": filter, "page[size]": page_size}
        if additional_fields:
            params["additional-fields[profile]"] = ",".join(additional_fields)
        yield from self._paginate("profiles:get", None, params)

    def profiles_by_external_id(self, external_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Profiles whose external_id is one of these (any number: 100 per call, Klaviyo's page size)."""
        unique = sorted(set(external_ids))
        found: list[dict[str, Any]] = []
        for start in range(0, len(unique), 100):
            filter_ = f"any(external_id,{_json.dumps(unique[start:start + 100])})"
            found.extend(self.get_profiles(filter_, page_size=100))
        return found

    def get_events(self, filter: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Events matching a Klaviyo filter (metric_id, profile_id, datetime...), every page."""
        yield from self._paginate("events:get", None, {"filter": filter, "page[size]": page_size})

    def get_metrics(self) -> Iterator[dict[str, Any]]:
        """Every metric of the account (id, `attributes.name`), every page: how a metric's id is found to
        filter events by it (Klaviyo filters metrics by integration only, not by name)."""
        yield from self._paginate("metrics:get", None, {})

    def _paginate(self, key: str, path: str | None, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        response = self.request(key, path=path, params=params)
        while True:
            body = response.data if isinstance(response.data, dict) else {}
            yield from body.get("data") or []
            links = body.get("links")
            next_url = links.get("next") if isinstance(links, dict) else None
            if not next_url:
                return
            response = self.request(key, url=next_url)

    def request_profile_deletion(self, payload: dict[str, Any]) -> KlaviyoResponse:
        return self.request("data-privacy-deletion", body=builders.deletion_body(payload))

    # --- events ----------------------------------------------------------------------------------

    def create_event(self, payload: dict[str, Any]) -> KlaviyoResponse:
        return self.request("events", body=builders.event_body(payload))

    def bulk_create_events(self, payloads: Sequence[dict[str, Any]]) -> KlaviyoResponse:
        """One event bulk job (<= 1,000 events). Klaviyo offers no status for it: the 202 is all."""
        return self._send_bulk("event-bulk-create-jobs", builders.bulk_events_body(payloads))

    # --- consent ---------------------------------------------------------------------------------

    def subscribe(self, payloads: Sequence[dict[str, Any]]) -> list[KlaviyoResponse]:
        return self._send_jobs("subscribe", builders.subscribe_body(payloads))

    def unsubscribe(self, payloads: Sequence[dict[str, Any]]) -> list[KlaviyoResponse]:
        return self._send_jobs("unsubscribe", builders.unsubscribe_body(payloads))

    def _send_jobs(self, key: str, bodies: list[builders.BulkBody]) -> list[KlaviyoResponse]:
        """Send the jobs one by one; if one fails, the error's `delivered_rows` lists the payload
        indexes the earlier jobs already delivered (record those, re-send the rest)."""
        responses: list[KlaviyoResponse] = []
        delivered: list[int] = []
        for bulk in bodies:
            try:
                responses.append(self._send_bulk(key, bulk))
            except KlaviyoError as exc:
                exc.delivered_rows = sorted(delivered)
                raise
            delivered.extend(bulk.payload_indexes)
        return responses

    # --- catalog ---------------------------------------------------------------------------------

    def create_catalog_item(self, payload: dict[str, Any]) -> KlaviyoResponse:
        return self.request("catalog-items", body=builders.catalog_item_body(payload))

    def update_catalog_item(
        self, payload: dict[str, Any] | str, attributes: dict[str, Any] | None = None
    ) -> KlaviyoResponse:
        """PATCH an item: a payload with `external_id`, or `(external_id, {attributes})`."""
        merged = _with_external_id(payload, attributes)
        body = builders.catalog_item_update_body(merged)
        ep = endpoint("catalog-items:update")
        return self.request(ep.key, path=ep.url_path(builders.catalog_id(merged["external_id"])), body=body)

    def create_catalog_variant(self, payload: dict[str, Any]) -> KlaviyoResponse:
        return self.request("catalog-variants", body=builders.catalog_variant_create_body(payload))

    def update_catalog_variant(
        self, payload: dict[str, Any] | str, attributes: dict[str, Any] | None = None
    ) -> KlaviyoResponse:
        """PATCH a variant: a payload with `external_id`, or `(external_id, {"inventory_quantity": 4})`."""
        merged = _with_external_id(payload, attributes)
        body = builders.catalog_variant_update_body(merged)
        ep = endpoint("catalog-variants:update")
        return self.request(ep.key, path=ep.url_path(builders.catalog_id(merged["external_id"])), body=body)

    def upsert_catalog_item(self, payload: dict[str, Any]) -> KlaviyoResponse:
        """Create the item; if Klaviyo says it exists (`creation_found_existing`), update it with the same
        payload."""
        try:
            return self.create_catalog_item(payload)
        except PermanentError as exc:
            if not creation_found_existing(exc):
                raise
        return self.update_catalog_item(payload)

    def upsert_catalog_variant(self, payload: dict[str, Any]) -> KlaviyoResponse:
        """Create the variant; if Klaviyo says it exists, update it (its item cannot change)."""
        try:
            return self.create_catalog_variant(payload)
        except PermanentError as exc:
            if not creation_found_existing(exc):
                raise
        return self.update_catalog_variant(payload)

    def delete_catalog_item(self, external_id: str) -> KlaviyoResponse:
        ep = endpoint("catalog-items:delete")
        return self.request(ep.key, path=ep.url_path(builders.catalog_id(external_id)))

    def delete_catalog_variant(self, external_id: str) -> KlaviyoResponse:
        ep = endpoint("catalog-variants:delete")
        return self.request(ep.key, path=ep.url_path(builders.catalog_id(external_id)))

    def retire_catalog_entry(self, payload: dict[str, Any]) -> KlaviyoResponse:
        """A `catalog_retire` payload: `external_id`, `kind` ("item"|"variant"), `action` ("unpublish"
        |"delete"). Deleting what is already gone (404) counts as done."""
        kind, action, external_id = payload.get("kind"), payload.get("action"), payload.get("external_id")
        if kind not in ("item", "variant") or action not in ("unpublish", "delete") or not external_id:
            raise builders.PayloadError(
                "catalog-retire", ["needs external_id, kind 'item'|'variant' and action 'unpublish'|'delete'"]
            )
        if action == "unpublish":
            update = self.update_catalog_item if kind == "item" else self.update_catalog_variant
            return update(str(external_id), {"published": False})
        delete = self.delete_catalog_item if kind == "item" else self.delete_catalog_variant
        try:
            return delete(str(external_id))
        except PermanentError as exc:
            if exc.status == 404:
                return KlaviyoResponse(404, None, {})
            raise

    def _catalog_job(self, kind: str, bulk: builders.BulkBody) -> str:
        response = self._send_bulk("catalog-bulk", bulk, path=f"/api/{CATALOG_JOB_PATHS[kind]}")
        if response.id is None:
            raise TransientError(
                f"catalog-bulk {kind}: 2xx without a job id", status=response.status, endpoint="catalog-bulk"
            )
        return response.id

    def bulk_create_items(self, payloads: Sequence[dict[str, Any]]) -> str:
        return self._catalog_job("item-create", builders.catalog_bulk_item_create_body(payloads))

    def bulk_update_items(self, payloads: Sequence[dict[str, Any]]) -> str:
        return self._catalog_job("item-update", builders.catalog_bulk_item_update_body(payloads))

    def bulk_delete_items(self, payloads: Sequence[dict[str, Any]]) -> str:
        return self._catalog_job("item-delete", builders.catalog_bulk_item_delete_body(payloads))

    def bulk_create_variants(self, payloads: Sequence[dict[str, Any]]) -> str:
        """Start a variant bulk create job (<= 100); returns the job id."""
        return self._catalog_job("variant-create", builders.catalog_bulk_variant_create_body(payloads))

    def bulk_update_variants(self, payloads: Sequence[dict[str, Any]]) -> str:
        """Start a variant bulk update job (<= 100); returns the job id."""
        return self._catalog_job("variant-update", builders.catalog_bulk_variant_update_body(payloads))

    def bulk_delete_variants(self, payloads: Sequence[dict[str, Any]]) -> str:
        return self._catalog_job("variant-delete", builders.catalog_bulk_variant_delete_body(payloads))

    def get_catalog_job(self, kind: str, job_id: str) -> dict[str, Any]:
        """A catalog bulk job (`kind` as in endpoints.CATALOG_JOB_PATHS: "variant-update"...):
        `attributes.status` (queued|processing|complete|cancelled), counts and `errors`."""
        if kind not in CATALOG_JOB_PATHS:
            raise ValueError(
                f"unknown catalog job kind {kind!r}; expected one of {sorted(CATALOG_JOB_PATHS)}"
            )
        path = f"/api/{CATALOG_JOB_PATHS[kind]}/{quote(job_id, safe='')}"
        data = self.request("catalog-bulk:get", path=path, inline_wait=READ_BACK_INLINE_WAIT).data
        return dict(data.get("data") or {}) if isinstance(data, dict) else {}

    # --- back in stock ---------------------------------------------------------------------------

    def create_back_in_stock_subscription(self, payload: dict[str, Any]) -> KlaviyoResponse:
        return self.request("back-in-stock", body=builders.back_in_stock_body(payload))


def _with_external_id(payload: dict[str, Any] | str, attributes: dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(payload, str):
        return {"external_id": payload, **(attributes or {})}
    return {**payload, **(attributes or {})}


def _attach_payload_rows(exc: KlaviyoError, bulk: builders.BulkBody) -> None:
    by_row = rows_from_pointers(exc)
    exc.payload_rows = {
        index: items for row, items in by_row.items() for index in bulk.payloads_of_rows([row])
    }
