"""The task base class of every bcsync task (PyPI Warehouse's pattern: one class owns the policy).

Nothing is acknowledged until its work is durably done or durably handed on (docs/architecture.md, "When a
message is acknowledged"):
- Redis or the broker unreachable for a moment: the message is rejected *with requeue* and runs again once
  Redis answers (nothing can be written down while Redis is away);
- any other exception, and the hard time limit: the message goes to the delayed-retry schedule with backoff
  under its own id, and to its lane's dead-letter queue after ``max_attempts`` (`delivery.failures`);
- a message whose worker died while running it comes back (`task_reject_on_worker_lost`); its starts are
  counted in Redis before the body runs, so one that kills its worker every time is dead-lettered after
  ``poison_message_limit`` starts instead of looping.
Tasks whose work lives in Redis buffers and that beat sends every second (`retry_through_schedule = False`)
are not rescheduled: the next tick does their work; their failure is logged and reported to Sentry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import kombu.exceptions
import redis
from celery import Task
from celery.exceptions import Reject, TimeLimitExceeded

from delivery.failures import dead_letter_poisoned, hand_on_failed_task
from state.factory import stores
from state.task_runs import current_run

log = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    kombu.exceptions.OperationalError,
    ConnectionError,
)
REQUEUE_PAUSE_SECONDS = 1.0  # a moment's pause, so a Redis blip does not become a hot requeue loop


class FleetTask(Task):
    retry_through_schedule = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        message_id = request.id
        if request.is_eager or request.called_directly or not message_id:
            return super().__call__(*args, **kwargs)
        lane = str((request.delivery_info or {}).get("routing_key") or "default")
        token = current_run.set(message_id)
        try:
            runs = stores().task_runs
            starts, keep, reads = runs.started_reading(
                message_id, self.name, lane, lambda pipe: self.queue_start_reads(args, kwargs, pipe))
            if keep is not None:
                keep(reads)
            if starts > stores().settings.poison_message_limit:
                dead_letter_poisoned(stores(), self.name, message_id, list(args), lane, starts - 1)
                return None
            result = super().__call__(*args, **kwargs)
            if current_run.get() is not None:  # the body's own last pipeline did not forget it on the way
                runs.forget(message_id)
            return result
        except INFRASTRUCTURE_ERRORS as exc:
            self._requeue(message_id, exc)
        except Exception as exc:  # noqa: BLE001  every failure is handed on, never acknowledged away
            self._hand_on(message_id, list(args), lane, exc)
        finally:
            current_run.reset(token)
            self.forget_start_reads()
        return None

    def queue_start_reads(self, args: tuple[Any, ...], kwargs: dict[str, Any], pipe: Any
                          ) -> Callable[[list[Any]], None] | None:
        """Reads the body starts with, queued on the pipeline that counts the task's start: their round trip
        is saved. Returns what to do with their answers (in order), or None if it queued nothing."""
        return None

    def forget_start_reads(self) -> None:
        """Drop what `queue_start_reads` kept and the body did not use: nothing of one task reaches the next."""

    def _hand_on(self, message_id: str, args: list[Any], lane: str, exc: BaseException) -> None:
        if not self.retry_through_schedule:
            log.error("%s[%s] failed; its next run does the work", self.name, message_id, exc_info=exc)
            stores().task_runs.forget(message_id)
            return
        log.error("%s[%s] failed", self.name, message_id, exc_info=exc)
        try:
            hand_on_failed_task(stores(), self.name, message_id, args, lane, exc)
        except INFRASTRUCTURE_ERRORS as infra:
            self._requeue(message_id, infra)

    def _requeue(self, message_id: str, exc: BaseException) -> None:
        log.warning("%s: %s: %s; the message goes back on its lane", self.name, type(exc).__name__, exc)
        try:  # not a crash: this start must not count towards the poison limit
            stores().task_runs.ended(message_id)
        except INFRASTRUCTURE_ERRORS:
            pass
        time.sleep(REQUEUE_PAUSE_SECONDS)
        raise Reject(exc, requeue=True) from exc

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Runs in the worker's main process when the hard time limit killed the task; Celery acknowledges
        the message only after this returns, so the work is handed on first (an error here leaves the
        message unacknowledged, to be redelivered)."""
        if not isinstance(exc, TimeLimitExceeded) or not task_id:
            return
        run = stores().task_runs.get(task_id)
        lane = (run.lane if run else None) or "default"
        if self.retry_through_schedule:
            hand_on_failed_task(stores(), self.name, task_id, list(args or []), lane, exc)
        else:
            stores().task_runs.forget(task_id)
