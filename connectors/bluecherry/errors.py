"""Blue Cherry API errors, and reading the several error-body shapes the gateway and bcapi return."""

from __future__ import annotations

from typing import Any


class BlueCherryError(Exception):
    """A Blue Cherry call that failed for good: says which call, the HTTP status and the API's message."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        self.status = status
        self.url = url
        self.api_message = message
        where = f" ({status} from {url})" if status is not None else (f" ({url})" if url else "")
        super().__init__(f"{message}{where}")


class BlueCherryAuthError(BlueCherryError):
    """401/403: the subscription key is missing, wrong or not allowed this resource. Never retried."""


class BlueCherryRetryableError(BlueCherryError):
    """429, 5xx, a timeout or a connection error: retried with backoff; raised once attempts run out."""

    def __init__(
        self, message: str, *, status: int | None = None, url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class BlueCherryResponseError(BlueCherryError):
    """A response we cannot use: a 4xx other than auth, or a body that is not the documented shape."""


def error_message(body: Any, default: str = "") -> str:
    """The human message out of any of the error shapes seen in the wild.

    ``{"errors": [{"errorMessage": ...}]}``, ``{"errors": [{"message": ...}]}``,
    ``{"message": [{"message": ...}]}`` and ``{"message": "..."}``; anything else gives ``default``.
    """
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            for name in ("errorMessage", "message", "detail", "title"):
                if isinstance(first.get(name), str) and first[name]:
                    return str(first[name])
        message = body.get("message")
        if isinstance(message, list) and message and isinstance(message[0], dict):
            inner = message[0].get("message")
            if isinstance(inner, str) and inner:
                return inner
        if isinstance(message, str) and message:
            return message
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return default


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the integer form; an HTTP date is rare here and read as 'unknown')."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
