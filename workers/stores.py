"""The state stores as operators' commands open them (one Redis connection per command)."""

from __future__ import annotations

from functools import lru_cache

import redis

from config.mapping import get_mapping
from config.redis import redis_client
from config.settings import get_settings
from state.dead_letters import DeadLetters
from state.delayed import DelayedSchedule
from state.exceptions import ExceptionRegister
from state.ledger import Ledger


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    return redis_client()


def dead_letters() -> DeadLetters:
    s = get_settings()
    return DeadLetters(client(), s.key_prefix, s.dead_letter_ttl_days)


def exceptions() -> ExceptionRegister:
    s = get_settings()
    return ExceptionRegister(client(), s.key_prefix, get_mapping().owners, s.exception_ttl_days)


def ledger() -> Ledger:
    s = get_settings()
    return Ledger(client(), s.key_prefix, s.ledger_ttl_days)


def delayed() -> DelayedSchedule:
    return DelayedSchedule(client(), get_settings().key_prefix)
