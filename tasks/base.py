"""The task base class of every bcsync task (PyPI Warehouse's pattern: one class owns the policy).

Tasks handle every failure they expect themselves (dead letters, the delayed-retry schedule). What can still
escape is trouble with the infrastructure under them - Redis or the broker unreachable for a moment. Such a
message must not be acknowledged and lost (`task_acks_on_failure_or_timeout` would ack it): it is rejected
*with requeue*, so it goes back on its lane and runs again once Redis answers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kombu.exceptions
import redis
from celery import Task
from celery.exceptions import Reject

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
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except INFRASTRUCTURE_ERRORS as exc:
            log.warning("%s: %s: %s; the message goes back on its lane", self.name, type(exc).__name__, exc)
            time.sleep(REQUEUE_PAUSE_SECONDS)
            raise Reject(exc, requeue=True) from exc
