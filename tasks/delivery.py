"""Celery entry points of the delivery engine (`delivery/`): a message in, one engine call out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import signals

from config.celery import app
from config.settings import get_settings
from config.task_names import (
    CHECK_CATALOG_JOB,
    CHECK_CONSENT_JOBS,
    CHECK_PROFILE_IMPORT_JOB,
    DELIVER,
    DELIVER_BY_KIND,
)
from delivery import bulk_jobs, consent_confirm
from delivery.drainer import Drainer
from delivery.engine import forget_prefetched, process_envelope, queue_held_reads
from delivery.heartbeat import Heartbeat
from delivery.runtime import before_the_pool_forks, ready_for_the_first_message, runtime
from delivery.senders import catalog
from tasks.base import FleetTask

log = logging.getLogger(__name__)


def deliver(env: dict[str, Any]) -> None:
    process_envelope(env, runtime())


class DeliveryTask(FleetTask):
    """The engine's first reads (who else holds the keys, what the ledger has of them) go in the round trip
    that counts the message's start (issue 18: a round trip fewer per single event)."""

    def queue_start_reads(self, args: tuple[Any, ...], kwargs: dict[str, Any], pipe: Any
                          ) -> Callable[[list[Any]], None] | None:
        message = args[0] if args else kwargs.get("env")
        try:
            return queue_held_reads(runtime(), message, pipe)
        except Exception:  # the start must be counted whatever this message holds: the engine reads for itself
            log.warning("could not read ahead for a delivery task; its body reads for itself", exc_info=True)
            return None

    def forget_start_reads(self) -> None:
        forget_prefetched()


# one registered name per operation kind, so Flower shows what is delivered; the generic name stays
# registered for messages published under it before (queues, the delayed schedule, dead letters)
deliver_tasks = {name: app.task(name=name, base=DeliveryTask, ignore_result=True, acks_late=True)(deliver)
                 for name in (*DELIVER_BY_KIND, DELIVER)}


@app.task(name=CHECK_PROFILE_IMPORT_JOB, ignore_result=True, acks_late=True)
def check_profile_import_job(
    job_id: str, operations: list[dict[str, Any]], lane: str = "batch", holder: str | None = None
) -> None:
    bulk_jobs.check_profile_import_job(runtime(), job_id, operations, lane, holder)


@app.task(name=CHECK_CATALOG_JOB, ignore_result=True, acks_late=True)
def check_catalog_job(
    kind: str,
    job_id: str,
    operations: list[dict[str, Any]],
    lane: str = "batch",
    carried: dict[str, str] | None = None,
) -> None:
    catalog.check_catalog_job(runtime(), kind, job_id, operations, lane, carried or {})


@app.task(name=CHECK_CONSENT_JOBS, ignore_result=True, acks_late=True)
def check_consent_jobs(jobs: list[dict[str, Any]], lane: str = "fast") -> None:
    consent_confirm.check_consent_jobs(runtime(), jobs, lane)


_drainer: Drainer | None = None
_heartbeat: Heartbeat | None = None


@signals.worker_init.connect
def _before_the_pool_forks(**_: Any) -> None:
    before_the_pool_forks()


@signals.worker_process_init.connect
def _ready_for_the_first_message(**_: Any) -> None:
    ready_for_the_first_message()


@signals.worker_ready.connect
def _start_drainer(**_: Any) -> None:
    global _drainer
    _drainer = Drainer(get_settings().delayed_drain_interval_seconds)
    _drainer.start()


@signals.worker_ready.connect
def _start_heartbeat(**_: Any) -> None:
    global _heartbeat
    _heartbeat = Heartbeat(get_settings().unacked_heartbeat_seconds)
    _heartbeat.start()


@signals.worker_shutdown.connect
def _stop_drainer(**_: Any) -> None:
    if _drainer is not None:
        _drainer.stopping.set()


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    # sent after the warm shutdown has finished (and acknowledged) the running tasks
    if _heartbeat is not None:
        _heartbeat.stopping.set()
