"""Klaviyo's JSON:API error format: every rejection the sandbox makes goes through ApiError."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

TITLES = {
    400: "Invalid input.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "Request entity too large.",
    415: "Unsupported media type.",
    429: "Request was throttled.",
    500: "A server error occurred.",
    502: "Bad gateway.",
    503: "Service unavailable.",
    504: "Gateway timeout.",
}
CODES = {
    400: "invalid",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


@dataclass
class ErrorItem:
    status: int
    detail: str
    pointer: str = "/data"
    code: str | None = None
    title: str | None = None
    parameter: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        source: dict[str, str] = {"pointer": self.pointer}
        if self.parameter is not None:
            source["parameter"] = self.parameter
        return {
            "id": str(uuid.uuid4()),
            "status": self.status,
            "code": self.code or CODES.get(self.status, "error"),
            "title": self.title or TITLES.get(self.status, "Error."),
            "detail": self.detail,
            "source": source,
            "meta": self.meta,
        }


class ApiError(Exception):
    """Raised anywhere in request handling; rendered as `{"errors": [...]}` with the first item's status."""

    def __init__(self, items: list[ErrorItem], headers: dict[str, str] | None = None) -> None:
        super().__init__(items[0].detail if items else "error")
        self.items = items
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return self.items[0].status

    def body(self) -> dict[str, Any]:
        return {"errors": [item.to_json() for item in self.items]}


def api_error(status: int, detail: str, pointer: str = "/data", **kwargs: Any) -> ApiError:
    headers = kwargs.pop("headers", None)
    return ApiError([ErrorItem(status=status, detail=detail, pointer=pointer, **kwargs)], headers=headers)


def pointer_of(path: tuple[str | int, ...] | list[str | int]) -> str:
    """JSON pointer for a path of keys and indexes (RFC 6901 escaping)."""
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in path)
