"""Pure pieces of the client: Retry-After parsing, response ids, classification without a limiter."""

from __future__ import annotations

import json
import time
from email.utils import formatdate

import httpx
import pytest

from connectors.klaviyo.client import KlaviyoClient, KlaviyoResponse, retry_after_seconds
from connectors.klaviyo.errors import (
    DuplicateProfileError,
    EndpointParkedError,
    PermanentError,
    ThrottledError,
    TransientError,
)


def test_retry_after_forms() -> None:
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds("1.5") == 1.5
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert 55 < (retry_after_seconds(formatdate(time.time() + 60, usegmt=True)) or 0) <= 60


def test_retry_after_is_always_a_usable_finite_delay() -> None:
    # a garbage header ("inf", "nan", an absurd number) used to give inf/nan or a delay no clock can show,
    # and the park handler's time.ctime() then raised inside the task: the message was acked and lost
    assert retry_after_seconds("inf") is None and retry_after_seconds("nan") is None
    assert retry_after_seconds("1e400") is None
    huge = retry_after_seconds("99999999999999999")
    assert huge is not None and time.ctime(time.time() + huge)


def test_response_id_and_created() -> None:
    assert KlaviyoResponse(202, {"data": {"type": "job", "id": "J1"}}).id == "J1"
    assert KlaviyoResponse(202, None).id is None and not KlaviyoResponse(200, None).created


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    return httpx.Response(status, content=content, headers=headers or {})


def classify(response: httpx.Response, park_after: float = 900) -> KlaviyoResponse:
    client = KlaviyoClient("http://127.0.0.1:9", "pk_x", "2026-10-15", None, "fast", park_after=park_after)
    try:
        return client._classify("profile-import", response)
    finally:
        client.close()


def error(code: str, **extra: object) -> dict[str, object]:
    return {"errors": [{"id": "1", "status": 0, "code": code, "title": "t", "detail": "d", **extra}]}


def test_classification_without_limiter() -> None:
    assert classify(answer(202)).data is None
    with pytest.raises(ThrottledError) as throttled:
        classify(answer(429, error("throttled"), {"Retry-After": "7"}))
    assert throttled.value.retry_after == 7.0
    with pytest.raises(ThrottledError) as no_header:
        classify(answer(429, error("throttled")))
    assert no_header.value.retry_after == 1.0
    with pytest.raises(EndpointParkedError):
        classify(answer(429, error("throttled"), {"Retry-After": "67608"}))
    for status in (500, 502, 503, 504, 408):
        with pytest.raises(TransientError):
            classify(answer(status, "<html>oops</html>"))
    dup = error("duplicate_profile", meta={"duplicate_profile_id": "01P"})
    with pytest.raises(DuplicateProfileError) as duplicate:
        classify(answer(409, dup))
    assert duplicate.value.duplicate_profile_id == "01P"
    with pytest.raises(PermanentError) as conflict:
        classify(answer(409, error("conflict")))
    assert type(conflict.value) is PermanentError
    for status in (400, 401, 403, 404, 405, 410, 415):
        with pytest.raises(PermanentError) as refused:
            classify(answer(status, error("invalid", source={"pointer": "/data"})))
        assert not isinstance(refused.value, TransientError) and refused.value.errors[0].pointer == "/data"
