"""What the engine does with each way a send can fail: one table, read top to bottom, first match wins.

The order matters where classes nest (a 429 `ThrottledError` is a `TransientError`, a `DuplicateProfileError`
is a `PermanentError`): the narrower class comes first.
"""

from __future__ import annotations

from enum import Enum

import httpx
import redis
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from connectors.klaviyo.builders import PayloadError
from connectors.klaviyo.errors import (
    DuplicateProfileError,
    EndpointParkedError,
    PermanentError,
    RateLimitedLocally,
    ThrottledError,
    TransientError,
)


class Action(Enum):
    REFUSED_LOCALLY = "dead-letter: our own models refused the payload, Klaviyo never saw it"
    WAIT_FOR_BUDGET = "reschedule after the fleet's own budget frees up; not an attempt"
    PARK = "reschedule after a throttle of hours ends, and tell operators (endpoint_parked)"
    WAIT_AFTER_429 = "reschedule after Klaviyo's Retry-After; recorded, not counted against max_attempts"
    RETRY = "retry with exponential backoff; dead-letter after max_attempts"
    RESOLVE_DUPLICATE = "the duplicate-profile rule: resend without the colliding phone, or dead-letter"
    DEAD_LETTER = "dead-letter with Klaviyo's error: a permanent refusal is never retried"
    RETRY_UNEXPECTED = "retry with backoff (a bug or unknown trouble may pass); dead-letter with its traceback"


POLICY: tuple[tuple[tuple[type[BaseException], ...], Action], ...] = (
    ((PayloadError, ValidationError, ValueError), Action.REFUSED_LOCALLY),
    ((RateLimitedLocally,), Action.WAIT_FOR_BUDGET),
    ((EndpointParkedError,), Action.PARK),
    ((ThrottledError,), Action.WAIT_AFTER_429),
    ((TransientError,), Action.RETRY),
    ((DuplicateProfileError,), Action.RESOLVE_DUPLICATE),
    ((PermanentError,), Action.DEAD_LETTER),
    # unclassified trouble on the way (a time limit, a socket): never lose the message, retry it
    ((SoftTimeLimitExceeded, httpx.HTTPError, redis.RedisError, OSError), Action.RETRY),
    ((Exception,), Action.RETRY_UNEXPECTED),
)


def action_for(exc: BaseException) -> Action | None:
    """The action for a failure; None for what is not an `Exception` (a KeyboardInterrupt, a SystemExit)."""
    for classes, action in POLICY:
        if isinstance(exc, classes):
            return action
    return None
