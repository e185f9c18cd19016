"""What can go wrong talking to Klaviyo, as classes the task layer decides on.

- `TransientError` (429, 5xx, timeouts, connection errors): retry later through the delayed-retry schedule.
- `ThrottledError` (429): a transient error whose `retry_after` came from Klaviyo; the endpoint is already
  paused fleet-wide when it is raised.
- `PermanentError` (other 4xx): never retry the same payload; dead-letter it with `to_dict()`.
- `DuplicateProfileError` (409 duplicate_profile): permanent for that payload, but carries the id of the
  profile the identifiers already belong to, so the domain can decide how to merge.
- `EndpointParkedError`: a throttle longer than the park cap; the work waits until `until` and an
  operator exception is raised.
- `RateLimitedLocally`: the fleet's own budget is used up for longer than the inline wait; NOT a failure,
  re-schedule after `delay` without counting an attempt.

Messages never contain emails or phone numbers: only the endpoint, status and Klaviyo's error codes.
Klaviyo's own details (which may quote a value) stay in `.errors`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class KlaviyoErrorItem:
    """One entry of a JSON:API `errors` array."""

    id: str | None = None
    status: int | None = None
    code: str | None = None
    title: str | None = None
    detail: str | None = None
    pointer: str | None = None
    parameter: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any) -> KlaviyoErrorItem:
        if not isinstance(raw, dict):
            return cls(detail=str(raw)[:500])
        source = raw.get("source")
        source = source if isinstance(source, dict) else {}
        meta = raw.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        status = raw.get("status")
        try:
            status_int = int(status) if status is not None else None
        except (TypeError, ValueError):
            status_int = None
        return cls(
            id=_str_or_none(raw.get("id")),
            status=status_int,
            code=_str_or_none(raw.get("code")),
            title=_str_or_none(raw.get("title")),
            detail=_str_or_none(raw.get("detail")),
            pointer=_str_or_none(source.get("pointer")),
            parameter=_str_or_none(source.get("parameter")),
            meta=dict(meta),
        )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_error_items(body: Any) -> list[KlaviyoErrorItem]:
    """Klaviyo's `{"errors": [...]}` as items; anything else (HTML from a proxy, empty) gives []."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [KlaviyoErrorItem.from_json(item) for item in body["errors"]]
    return []


class KlaviyoError(Exception):
    """Base of every error the client raises for a request it made (or refused to make)."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: list[KlaviyoErrorItem] | None = None,
        endpoint: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors: list[KlaviyoErrorItem] = list(errors or [])
        self.endpoint = endpoint
        # Set by the client on bulk calls: input payload index -> the errors whose pointers name it,
        # and the payload indexes earlier jobs of the same call already delivered.
        self.payload_rows: dict[int, list[KlaviyoErrorItem]] = {}
        self.delivered_rows: list[int] = []

    @property
    def codes(self) -> list[str]:
        return [item.code for item in self.errors if item.code]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record of the failure, for dead letters and the exception register."""
        data: dict[str, Any] = {
            "class": type(self).__name__,
            "kind": self.kind,
            "message": self.message,
            "status": self.status,
            "endpoint": self.endpoint,
            "errors": [asdict(item) for item in self.errors],
            "payload_rows": {
                str(i): [asdict(item) for item in items] for i, items in self.payload_rows.items()
            },
            "delivered_rows": list(self.delivered_rows),
        }
        data.update(self._extra())
        return data

    def _extra(self) -> dict[str, Any]:
        return {}


class TransientError(KlaviyoError):
    """Worth retrying later: 429, 5xx, timeouts, connection errors."""

    kind = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def _extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class ThrottledError(TransientError):
    """HTTP 429; `retry_after` is Klaviyo's Retry-After (seconds). The endpoint is paused fleet-wide."""

    kind = "throttled"


class PermanentError(KlaviyoError):
    """A 4xx other than 429: the same payload will fail again. Dead-letter it."""

    kind = "permanent"


class DuplicateProfileError(PermanentError):
    """409 duplicate_profile: the identifiers sent belong to different existing profiles."""

    kind = "duplicate_profile"

    def __init__(self, message: str, *, duplicate_profile_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.duplicate_profile_id = duplicate_profile_id

    def _extra(self) -> dict[str, Any]:
        return {"duplicate_profile_id": self.duplicate_profile_id}


class EndpointParkedError(KlaviyoError):
    """The endpoint is parked until `until` (epoch seconds): a throttle longer than the park cap."""

    kind = "parked"

    def __init__(self, message: str, *, until: float, reason: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.until = until
        self.reason = reason

    def _extra(self) -> dict[str, Any]:
        return {"until": self.until, "reason": self.reason}


class RateLimitedLocally(KlaviyoError):
    """The fleet's own budget for the endpoint is used up for `delay` seconds. Not a failure."""

    kind = "rate_limited_locally"

    def __init__(self, message: str, *, delay: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.delay = delay

    def _extra(self) -> dict[str, Any]:
        return {"delay": self.delay}


def try_again_in(exc: KlaviyoError, otherwise: float, now: float) -> float:
    """Seconds until a call that raised `exc` is worth making again: its turn for the fleet's budget, the end
    of the endpoint's park, Klaviyo's Retry-After - or `otherwise` (a transient failure without one)."""
    if isinstance(exc, RateLimitedLocally):
        return exc.delay
    if isinstance(exc, EndpointParkedError):
        return max(0.0, exc.until - now)
    if isinstance(exc, TransientError) and exc.retry_after:
        return exc.retry_after
    return otherwise


# --- "this object already exists" ----------------------------------------------------------------------
# A catalog bulk job reports each failed row as an `APIJobErrorPayload` (Klaviyo's OpenAPI spec: `id`, `code`,
# `title`, `detail`, `source.pointer` - no HTTP status), so a row that failed because the item or variant is
# already there can only be told by its code and detail. Klaviyo documents no code for that case (the spec's
# only example code is `invalid`), so the codes below are those Klaviyo's JSON:API errors use for it or
# could (`conflict` is JSON:API's answer to creating a resource whose client-made id exists; the Klaviyo
# sandbox says `duplicate_catalog_item` / `duplicate_catalog_variant`), and the detail is the fallback:
# whatever the code, a detail saying the object "already exists" is that case. Asked only of *creations*.
ALREADY_EXISTS_CODES = frozenset(
    {"conflict", "duplicate", "already_exists", "exists", "duplicate_catalog_item", "duplicate_catalog_variant"}
)
# Codes that speak of a collision with *another* object (a profile owning the identifiers): never "exists".
_OTHER_OBJECT_CODES = frozenset({"duplicate_profile"})
_ALREADY_EXISTS_DETAIL = re.compile(r"\balready\s+exist|\bexists?\s+already\b", re.IGNORECASE)


def already_exists(error: KlaviyoErrorItem | dict[str, Any]) -> bool:
    """True when a creation's error (a job row's or a call's) says the object is already in Klaviyo."""
    item = error if isinstance(error, KlaviyoErrorItem) else KlaviyoErrorItem.from_json(error)
    code = (item.code or "").strip().lower().replace("-", "_")
    if code in _OTHER_OBJECT_CODES:
        return False
    return code in ALREADY_EXISTS_CODES or bool(item.detail and _ALREADY_EXISTS_DETAIL.search(item.detail))


def creation_found_existing(exc: KlaviyoError) -> bool:
    """A single create refused because the object exists: an error item says so (code or detail), or a
    409 without any readable error body (JSON:API's status for a client-made id that is taken)."""
    if exc.errors:
        return any(already_exists(item) for item in exc.errors)
    return exc.status == 409


# `/data/attributes/events-bulk-create/data/3/...`, `/data/attributes/profiles/data/17/...`,
# `/data/attributes/items/data/5`, `/data/attributes/variants/data/0/attributes/sku`
_ROW_POINTER = re.compile(r"^/data/attributes/[^/]+/data/(\d+)(?:/|$)")


def row_of_pointer(pointer: str | None) -> int | None:
    """The row index a bulk-request error pointer names, or None if it names no row."""
    if not pointer:
        return None
    match = _ROW_POINTER.match(pointer)
    return int(match.group(1)) if match else None


def rows_from_pointers(error: KlaviyoError) -> dict[int, list[KlaviyoErrorItem]]:
    """Map a 400 on a bulk request to the rows its error pointers name: {row index: [errors]}.

    Errors without a row pointer are left out; if the result is empty, the whole request is at fault.
    Row indexes are those of the request body's top-level collection (for event bulk jobs: the
    per-profile groups, see `models.BulkEventsBody.rows`).
    """
    rows: dict[int, list[KlaviyoErrorItem]] = {}
    for item in error.errors:
        row = row_of_pointer(item.pointer)
        if row is not None:
            rows.setdefault(row, []).append(item)
    return rows
