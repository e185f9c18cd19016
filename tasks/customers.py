"""Celery entry points of the customer flow (`flows/customers.py`)."""

from __future__ import annotations

from typing import Any

from config.celery import app
from config.task_names import DAILY_PROFILE_BATCH, DUPLICATE_PROFILE, GUARD_CONSENT, HANDLE_CUSTOMER_CHANGES
from delivery.runtime import runtime
from flows import customers
from sync.operations import Operation


@app.task(name=HANDLE_CUSTOMER_CHANGES, ignore_result=True, acks_late=True)
def handle_customer_changes(events: list[dict[str, Any]]) -> None:
    customers.handle_changes_or_retry(events, customers.default_context(), runtime().delayed,
                                     runtime().dead_letters)


@app.task(name=GUARD_CONSENT, ignore_result=True, acks_late=True)
def guard_consent(events: list[dict[str, Any]]) -> None:
    customers.handle_changes_or_retry(events, customers.default_context(), runtime().delayed,
                                     runtime().dead_letters, guard_only=True)


@app.task(name=DAILY_PROFILE_BATCH, ignore_result=True, acks_late=True)
def daily_profile_batch(force: bool = False) -> None:
    customers.daily_batch_if_due(customers.default_context(), force)


@app.task(name=DUPLICATE_PROFILE, ignore_result=True, acks_late=True)
def duplicate_profile(operation: dict[str, Any], duplicate_profile_id: str | None = None) -> None:
    customers.handle_duplicate_profile(
        Operation.model_validate(operation), duplicate_profile_id, customers.default_context()
    )
