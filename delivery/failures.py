"""What happens to a task message whose work failed in a way its flow did not handle.

The rule: a message is acknowledged only once its work is durably done or durably handed on. A task that
raises (a bug, a 4xx nobody expected, a soft or hard time limit) is handed to the delayed-retry schedule with
exponential backoff, under its own message id so its failures add up; after ``max_attempts`` it goes to its
lane's dead-letter queue with the exception type and a short traceback, and `bcsync dlq requeue` sends it
again once the cause is lifted. A message that kills its worker (it never reaches this code) is counted by
its starts and dead-lettered after ``poison_message_limit`` (`state.task_runs`).
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from typing import Any, Literal

from config.settings import Settings
from connectors.klaviyo.errors import KlaviyoError
from state.dead_letters import Attempt
from state.factory import Stores

log = logging.getLogger(__name__)

Outcome = Literal["rescheduled", "dead-lettered"]


def backoff_delay(attempts: int, settings: Settings) -> float:
    base = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.5, 1.0)


def short_traceback(exc: BaseException, limit: int = 8) -> str:
    """The last frames of an exception's traceback, for a dead letter an operator reads."""
    return "".join(traceback.format_exception(exc, limit=-limit))[-4000:]


def failure_attempt(exc: BaseException) -> Attempt:
    """An attempt that failed on our side (a bug, a time limit): its type, message and a short traceback."""
    return Attempt(at=time.time(), error=f"{type(exc).__name__}: {exc}"[:2000], traceback=short_traceback(exc))


def klaviyo_attempt(exc: KlaviyoError) -> Attempt:
    """An attempt Klaviyo answered (or never answered): status, endpoint and Klaviyo's error objects."""
    data = exc.to_dict()
    return Attempt(at=time.time(), status=exc.status, endpoint=exc.endpoint, error=data["message"],
                   errors=data["errors"])


def attempt_of(exc: BaseException) -> Attempt:
    return klaviyo_attempt(exc) if isinstance(exc, KlaviyoError) else failure_attempt(exc)


def hand_on_failed_task(
    st: Stores, task: str, message_id: str, args: list[Any], lane: str, exc: BaseException,
) -> Outcome:
    """Reschedule a failed task message with backoff, or dead-letter it after `max_attempts` failures."""
    settings = st.settings
    attempt = failure_attempt(exc)
    failures = st.task_runs.failed(message_id, attempt.model_dump_json())
    if failures >= settings.max_attempts:
        attempts = [Attempt.model_validate_json(raw) for raw in st.task_runs.attempts(message_id)] or [attempt]
        entry = st.dead_letters.add_task(
            task, lane, args, attempts, f"gave up after {failures} failures ({type(exc).__name__}: {exc})"[:500],
        )
        st.task_runs.forget(message_id)
        log.error("%s[%s] dead-lettered as %s after %d failures", task, message_id, entry.id, failures)
        return "dead-lettered"
    delay = backoff_delay(failures, settings)
    st.delayed.add(task, args, lane, time.time() + delay, task_id=message_id)
    st.task_runs.ended(message_id)
    log.warning("%s[%s] failed (%s: %s); retry %d in %.1f s", task, message_id, type(exc).__name__, exc,
                failures, delay)
    return "rescheduled"


def dead_letter_poisoned(st: Stores, task: str, message_id: str, args: list[Any], lane: str, starts: int) -> None:
    """A message that started `starts` times and never finished: its worker died each time (or the hard time
    limit killed it). Running it again would kill another worker."""
    reason = (f"started {starts} times without finishing: the worker running it died each time "
              "(crash, out of memory, or killed)")
    attempts = [Attempt.model_validate_json(raw) for raw in st.task_runs.attempts(message_id)]
    entry = st.dead_letters.add_task(task, lane, args, [*attempts, Attempt(at=time.time(), error=reason)], reason)
    st.task_runs.forget(message_id)
    log.error("%s[%s] is a poison message: dead-lettered as %s", task, message_id, entry.id)
