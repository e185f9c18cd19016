"""The one Celery app: three lanes on Redis, late acks, JSON only, a beat that cannot run twice.

Lanes: ``fast`` (consent, new customers, scarce stock, cancellations), ``default`` (order lifecycle),
``batch`` (bulk updates, backfills, repairs). Each lane gets its own worker process(es)
(`bcsync worker --lane fast`), so a batch backlog never occupies a fast worker.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from celery import Celery, signals
from celery.schedules import crontab
from kombu import Exchange, Queue

from config import message_json
from config.lanes import LANES
from config.mapping import MappingError, get_mapping
from config.redis import broker_key_prefix
from config.settings import Settings, get_settings
from config.task_events import CoalescedTaskEvents
from config.task_names import (
    ATTRIBUTION_REPORT,
    CHECK_FRESHNESS,
    DAILY_PROFILE_BATCH,
    EXPIRE_STOCK_SCANS,
    FLUSH_ORDER_BULK,
    FLUSH_STOCK,
    RECONCILE,
    RELEASE_ORDERS,
)

# Imported by every worker (by name: config/ never imports tasks/ itself).
TASK_MODULES = ("tasks.delivery", "tasks.changes", "tasks.customers", "tasks.orders", "tasks.stock",
                "tasks.stock_scans", "tasks.monitoring", "tasks.reconcile", "tasks.attribution")
# the header every published message carries: when it was published, so the age of a lane's oldest waiting
# message can be read from the broker's list (state/queue_ages.py; a state/ module cannot import this one)
SENT_HEADER = "bcsync_sent"



def make_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    message_json.register()  # orjson for task bodies and task events, in kombu's JSON format
    # every task shares one base class that never lets an infrastructure blip lose its message
    celery_app = Celery("bcsync", include=list(TASK_MODULES), task_cls="tasks.base:FleetTask")
    exchange = Exchange("bcsync", type="direct")
    celery_app.conf.update(
        broker_url=settings.redis_url,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # tasks never fail (tasks/base.py hands every failure on first); on a hard time limit the task's
        # on_failure hands the message on, and only then is it acknowledged
        task_acks_on_failure=True,
        task_acks_on_timeout=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=settings.worker_concurrency,
        worker_lost_wait=settings.worker_lost_wait_seconds,
        worker_hijack_root_logger=False,
        # Flower's task view lives on these; BCSYNC_TASK_EVENTS=false trades it for their cost (bench/compare.py)
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        task_soft_time_limit=settings.task_soft_time_limit_seconds,
        task_time_limit=settings.task_time_limit_seconds,
        # kombu's Redis transport, but a message is never only in a dying worker's memory (state/broker_transport.py)
        broker_transport="state.broker_transport:Transport",
        broker_transport_options={
            # A message no heartbeat vouched for this long (its worker died) goes back on its lane. Short for
            # every lane and independent of the time limits: each live worker refreshes its messages' time
            # in kombu's unacked index every few seconds (delivery/heartbeat.py, state/unacked.py).
            "visibility_timeout": settings.visibility_timeout_seconds,
            # look for a dead worker's messages every N seconds (kombu's default sweep is ~100 s), and let a
            # worker that died mid-sweep block the sweep for one interval at most (overlapping sweeps are
            # harmless: each restore is a transaction watching the unacked hash, a message is restored once)
            "unacked_restore_interval": settings.redelivery_check_seconds,
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": settings.redelivery_check_seconds,
            "global_keyprefix": broker_key_prefix(settings.key_prefix),
            # one list per lane (no priority levels, which the fleet does not use): a worker then takes from a
            # single list, atomically into its taking list (state/broker_transport.py)
            "priority_steps": [0],
        },
        broker_connection_retry_on_startup=True,
        task_queues=[Queue(lane, exchange, routing_key=lane) for lane in LANES],
        task_default_queue="default",
        task_default_exchange="bcsync",
        task_default_routing_key="default",
        task_create_missing_queues=False,
        timezone="UTC",
        enable_utc=True,
        # RedBeat keeps the schedule in Redis behind a lock: a second beat only waits. Named by its dotted
        # path (config/ never imports workers/): RedBeat that reconnects, re-takes its lock and re-installs
        # the schedule after a Redis restart instead of exiting.
        beat_scheduler="workers.beat_scheduler:ResilientRedBeatScheduler",
        redbeat_redis_url=settings.redis_url,
        # a Redis host that drops packets must fail beat's commands (then retried), not hang them
        redbeat_redis_options={"socket_connect_timeout": 5, "socket_timeout": 10, "health_check_interval": 30},
        redbeat_key_prefix=f"{settings.key_prefix}:redbeat:",
        bcsync_key_prefix=settings.key_prefix,  # where the beat scheduler writes its heartbeat (state/beat.py)
        # The holder renews the lock every loop (at least 3 loops per timeout); a standby beat retries the
        # lock every loop too, so it takes over within about one timeout of the holder's crash.
        redbeat_lock_timeout=settings.beat_lock_timeout_seconds,
        beat_max_loop_interval=max(1, min(5, settings.beat_lock_timeout_seconds // 3)),
        beat_schedule={
            "flush-stock": {"task": FLUSH_STOCK, "schedule": 1.0, "options": {"queue": "batch"}},
            # the order bulk buffers' tails past their age bound, should the flush each buffer schedules have
            # been lost with its process (flows/bulk_buffer.py)
            # closed orders past their grace period keep only their durable facts (flows/order_release.py)
            "release-orders": {
                "task": RELEASE_ORDERS,
                "schedule": 60.0,
                "options": {"queue": "batch"},
            },
            "flush-order-bulk": {
                "task": FLUSH_ORDER_BULK,
                "schedule": max(1.0, settings.bulk_max_wait_seconds),
                "options": {"queue": "batch"},
            },
            # the bound of held stock figures: scans whose rows stopped arriving are given up (state/stock_scans.py)
            "expire-stock-scans": {
                "task": EXPIRE_STOCK_SCANS,
                "schedule": min(10.0, max(1.0, settings.stock_complete_seconds / 10)),
                "options": {"queue": "fast"},
            },
            # freshness and lag against their thresholds: exceptions, Sentry, `bcsync status` (delivery/freshness.py)
            "check-freshness": {
                "task": CHECK_FRESHNESS,
                "schedule": settings.freshness_check_seconds,
                "options": {"queue": "fast"},
            },
            "daily-profile-batch": {
                "task": DAILY_PROFILE_BATCH,
                "schedule": 3600.0,
                "options": {"queue": "batch"},
            },
            **reconcile_schedule(settings),
            **attribution_schedule(settings),
        },
        bcsync_task_events_flush_seconds=settings.task_events_flush_seconds,
    )
    if settings.task_events:  # one PUBLISH per batch of task events, not per event (config/task_events.py)
        celery_app.steps["consumer"].add(CoalescedTaskEvents)
    return celery_app


def reconcile_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat's reconciliation (flows/reconcile.py): consent and stock on recently changed records every
    `reconcile_recent_seconds`, every area nightly on a rolling slice of the customers (all in N days)."""
    out: dict[str, dict[str, Any]] = {}
    if settings.reconcile_recent_seconds > 0:
        out["reconcile-recent"] = {"task": RECONCILE, "schedule": settings.reconcile_recent_seconds,
                                   "args": [["consent", "stock"], True, False], "options": {"queue": "batch"}}
    if settings.reconcile_nightly_hour >= 0:
        out["reconcile-nightly"] = {
            "task": RECONCILE, "schedule": crontab(minute=0, hour=settings.reconcile_nightly_hour),
            "args": [["customers", "consent", "orders", "stock", "catalog"], False, True],
            "options": {"queue": "batch"},
        }
    return out


def attribution_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat's daily attribution report (flows/attribution.py) at `attribution_schedule_hour` UTC: it keeps the
    report's cache warm and raises its exceptions; its values reports stay within the day's budget."""
    if settings.attribution_schedule_hour < 0:
        return {}
    return {"attribution-daily": {"task": ATTRIBUTION_REPORT,
                                  "schedule": crontab(minute=30, hour=settings.attribution_schedule_hour),
                                  "options": {"queue": "batch"}}}


@signals.before_task_publish.connect
def _stamp_sent_time(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Every message says when it was published (Celery sends the headers dict it hands this signal)."""
    if headers is not None:
        headers.setdefault(SENT_HEADER, round(time.time(), 3))


# Celery's loggers of a line per task received and per task succeeded (both INFO; failures are ERROR)
PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


@signals.worker_init.connect
def _per_task_lines(**_: Any) -> None:
    """Before the pool forks, so every pool process inherits the levels."""
    level = logging.NOTSET if get_settings().log_every_task else logging.WARNING
    for name in PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(level)


@signals.worker_init.connect
def _refuse_bad_configuration(**_: Any) -> None:
    """A plain `celery -A config.celery:app worker` refuses a wrong mapping file before taking any message
    (a task would otherwise fail on it and its message be acknowledged)."""
    try:
        get_mapping()
    except MappingError as exc:
        print(f"configuration refused:\n{exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


app = make_app()
