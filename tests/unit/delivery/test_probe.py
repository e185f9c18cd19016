"""The half-open probe on real Redis: which answers end an outage on record (resuming the waiting work now) and
which keep the backoff. Klaviyo is a stand-in client that answers what each test says."""

from __future__ import annotations

import time

import pytest

from config.mapping import Mapping
from config.settings import Settings
from connectors.klaviyo.errors import KlaviyoError, PermanentError, ThrottledError, TransientError
from connectors.klaviyo.limiter import FleetRateLimiter
from delivery.probe import probe_after_outage
from delivery.runtime import Runtime
from state.factory import Stores


class Answers:
    """A Klaviyo client whose every request raises `error` (or succeeds when it is None)."""

    def __init__(self, error: KlaviyoError | None) -> None:
        self.error = error
        self.requests = 0

    def request(self, key: str, **_: object) -> None:
        self.requests += 1
        if self.error is not None:
            raise self.error


def runtime_answering(redis_client, redis_url: str, error: KlaviyoError | None) -> tuple[Runtime, Answers]:
    settings = Settings(redis_url=redis_url, key_prefix="t", klaviyo_api_key="pk_test_x")
    rt = Runtime(stores=Stores(settings, Mapping(), redis_client), limiter=FleetRateLimiter(redis_client, "t"))
    answers = Answers(error)
    rt.clients["batch"] = answers  # type: ignore[assignment]
    return rt, answers


def waiting_in_an_outage(rt: Runtime, due_in: float = 300.0) -> None:
    rt.delayed.add("bcsync.deliver.event", [{}], "default", time.time() + due_in, entry_id="env-1")
    rt.stores.outage.note_waiting("env-1")


@pytest.mark.parametrize("error", [
    TransientError("503", status=503), TransientError("408", status=408),
    TransientError("timeout"), TransientError("connection refused"),
], ids=["503", "408", "timeout", "no-connection"])
def test_an_answer_the_engine_calls_transient_keeps_the_backoff(redis_client, redis_url, error):
    rt, answers = runtime_answering(redis_client, redis_url, error)
    waiting_in_an_outage(rt)
    assert probe_after_outage(rt) == 0 and answers.requests == 1
    assert rt.delayed.next_due() > time.time() + 200 and rt.stores.outage.since() is not None


@pytest.mark.parametrize("error", [
    None, PermanentError("404", status=404), ThrottledError("429", status=429, retry_after=1.0),
], ids=["200", "404", "429"])
def test_any_other_answer_resumes_the_waiting_work_now(redis_client, redis_url, error):
    rt, _ = runtime_answering(redis_client, redis_url, error)
    waiting_in_an_outage(rt)
    assert probe_after_outage(rt) == 1
    assert rt.delayed.next_due() <= time.time() and rt.stores.outage.since() is None


def test_no_probe_without_an_outage_on_record_and_one_per_interval_while_there_is(redis_client, redis_url):
    rt, answers = runtime_answering(redis_client, redis_url, TransientError("503", status=503))
    assert probe_after_outage(rt) == 0 and answers.requests == 0
    waiting_in_an_outage(rt)
    probe_after_outage(rt)
    probe_after_outage(rt)
    assert answers.requests == 1, "one probe per PROBE_EVERY_SECONDS, fleet-wide"
