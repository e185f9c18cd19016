"""`publish_batch`'s fallback: a pipeline that fails is published again message by message (pure logic: a
recording producer and app stand in for kombu and Celery; tests/integration/delivery/test_publish_batched.py
counts the real round trips)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kombu.exceptions import BatchPublishError

from delivery.publish import publish_batch


class Recorder:
    """A producer and an app at once: `send_task` records what is sent, inside or outside a batch."""

    def __init__(self, fail_batch: bool) -> None:
        self.fail_batch = fail_batch
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
                raise failure from ConnectionError("reset")
        finally:
            self.in_batch = False

    def send_task(self, name: str, args: list[Any], queue: str, producer: Any) -> None:
        assert producer is self
        self.sent.append((args[0]["id"], self.in_batch))


ENVELOPES = [{"id": f"e{n}", "kind": "event", "lane": "default", "operations": []} for n in range(3)]


def test_a_batch_sends_every_envelope_inside_one_pipeline_large_enough_for_all() -> None:
    recorder = Recorder(fail_batch=False)
    publish_batch(recorder, ENVELOPES, celery_app=recorder)  # type: ignore[arg-type]
    assert recorder.sent == [("e0", True), ("e1", True), ("e2", True)]
    assert recorder.batches == [12]  # never flushed part-way: a message, its expiry and its event each


def test_a_failed_pipeline_is_published_again_message_by_message(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(fail_batch=True)
    publish_batch(recorder, ENVELOPES, celery_app=recorder)  # type: ignore[arg-type]
    assert recorder.sent == [("e0", True), ("e1", True), ("e2", True), ("e0", False), ("e1", False), ("e2", False)]
    assert "publishing them one by one" in caplog.text and "reset" in caplog.text


def test_an_error_outside_the_pipeline_is_not_swallowed() -> None:
    class Broken(Recorder):
        def send_task(self, name: str, args: list[Any], queue: str, producer: Any) -> None:
            raise ValueError("not serialisable")

    with pytest.raises(ValueError, match="not serialisable"):
        publish_batch(Broken(fail_batch=False), ENVELOPES, celery_app=Broken(fail_batch=False))  # type: ignore[arg-type]
