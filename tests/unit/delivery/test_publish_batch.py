"""`publish_batch`'s fallback: a pipeline that fails is published again message by message (pure logic: a
recording producer and app stand in for kombu and Celery; tests/integration/delivery/test_publish_batched.py
counts the real round trips)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import BatchPublishError
from redis.exceptions import ResponseError

from delivery.publish import publish_batch


class Recorder:
    """A producer and an app at once: `send_task` records what is sent, inside or outside a batch."""

    def __init__(self, fail_batch: bool, cause: BaseException | None = None, fail_at: int | None = None) -> None:
        self.fail_batch = fail_batch
        self.cause = cause or ConnectionResetError("reset")
        self.fail_at = fail_at  # the envelope whose one-by-one publish fails
        self.in_batch = False
        self.sent: list[tuple[str, bool]] = []
        self.batches: list[int] = []

    @contextmanager
    def batch(self, max_size: int) -> Iterator[None]:
        self.batches.append(max_size)
        self.in_batch = True
        try:
            yield
            if self.fail_batch:  # kombu raises at the flush, after every message was buffered
                failure = BatchPublishError("Redis publish batch failed; delivery is uncertain")
                raise failure from self.cause
        finally:
            self.in_batch = False

    def send_task(self, name: str, args: list[Any], queue: str, producer: Any) -> None:
        assert producer is self
        if not self.in_batch and self.fail_at is not None and args[0]["id"] == f"e{self.fail_at}":
            raise ConnectionRefusedError("still down")
        self.sent.append((args[0]["id"], self.in_batch))


ENVELOPES = [{"id": f"e{n}", "kind": "event", "lane": "default", "operations": []} for n in range(3)]


def test_a_batch_sends_every_envelope_inside_one_pipeline_large_enough_for_all() -> None:
    recorder, counted = Recorder(fail_batch=False), []
    publish_batch(recorder, ENVELOPES, celery_app=recorder, on_published=counted.append)  # type: ignore[arg-type]
    assert recorder.sent == [("e0", True), ("e1", True), ("e2", True)]
    assert counted == [3]
    assert recorder.batches == [12]  # never flushed part-way: a message, its expiry and its event each


def test_a_pipeline_the_connection_broke_is_published_again_message_by_message(
        caplog: pytest.LogCaptureFixture) -> None:
    recorder, counted = Recorder(fail_batch=True), []
    publish_batch(recorder, ENVELOPES, celery_app=recorder, on_published=counted.append)  # type: ignore[arg-type]
    assert recorder.sent == [("e0", True), ("e1", True), ("e2", True), ("e0", False), ("e1", False), ("e2", False)]
    assert counted == [1, 1, 1]
    assert "publishing them one by one" in caplog.text and "reset" in caplog.text


def test_only_what_the_one_by_one_publishing_sent_is_counted_when_it_fails_too() -> None:
    recorder, counted = Recorder(fail_batch=True, fail_at=1), []
    with pytest.raises(ConnectionRefusedError):
        publish_batch(recorder, ENVELOPES, celery_app=recorder, on_published=counted.append)  # type: ignore[arg-type]
    assert counted == [1]  # e0 is on the broker: its claim is kept; e1 and e2 are released by the caller


@pytest.mark.parametrize("cause", [SoftTimeLimitExceeded(), ResponseError("OOM command not allowed")])
def test_a_pipeline_failed_by_anything_but_the_connection_is_raised_and_not_sent_again(cause: BaseException) -> None:
    recorder, counted = Recorder(fail_batch=True, cause=cause), []
    with pytest.raises(type(cause)):
        publish_batch(recorder, ENVELOPES, celery_app=recorder, on_published=counted.append)  # type: ignore[arg-type]
    assert recorder.sent == [("e0", True), ("e1", True), ("e2", True)] and counted == []


def test_an_error_outside_the_pipeline_is_not_swallowed() -> None:
    class Broken(Recorder):
        def send_task(self, name: str, args: list[Any], queue: str, producer: Any) -> None:
            raise ValueError("not serialisable")

    with pytest.raises(ValueError, match="not serialisable"):
        publish_batch(Broken(fail_batch=False), ENVELOPES, celery_app=Broken(fail_batch=False))  # type: ignore[arg-type]
