"""The live sandbox: every piece of in-memory state, the clock, the limiter and the fault settings."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from sandbox.klaviyo.attribution import AttributionBook
from sandbox.klaviyo.catalog import Catalog
from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig
from sandbox.klaviyo.errors import ApiError, ErrorItem
from sandbox.klaviyo.events import EventLog
from sandbox.klaviyo.ids import IdFactory
from sandbox.klaviyo.jobs import Job, JobQueue, LateApply
from sandbox.klaviyo.profiles import ProfileBook, ProfileConflict
from sandbox.klaviyo.ratelimit import RateLimiter
from sandbox.klaviyo.timeutil import iso

# Klaviyo applies these asynchronously, with no status endpoint: the consent_job_* faults hold and reorder them
CONSENT_JOB_TYPES = frozenset({"profile-subscription-bulk-create-job", "profile-subscription-bulk-delete-job"})


def row_error(exc: Exception, pointer: str) -> ErrorItem:
    """How a failed bulk-job row is reported (import errors / job errors)."""
    if isinstance(exc, ProfileConflict):
        return ErrorItem(
            409,
            "A profile already exists with one of these identifiers.",
            pointer,
            code="duplicate_profile",
            meta={"duplicate_profile_id": exc.duplicate_profile_id},
        )
    if isinstance(exc, ApiError):
        first = exc.items[0]
        return ErrorItem(first.status, first.detail, pointer, code=first.code, meta=first.meta)
    return ErrorItem(500, f"{type(exc).__name__}: {exc}", pointer)


class KlaviyoSandbox:
    def __init__(self, config: KlaviyoSandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock  # replaceable in tests; rate-limit windows align to it
        self.limiter = RateLimiter(config.rate_limit_scale, config.rate_limits_enabled)
        self.faults = config.faults
        self.fault_set_at: float | None = None  # start-up faults count from the first request
        self.dice = random.Random(config.faults.seed)
        self._reset_data()

    def _reset_data(self) -> None:
        self.ids = IdFactory(self.config.seed)
        self.profiles = ProfileBook(self.ids)
        self.events = EventLog(self.ids)
        self.catalog = Catalog()
        self.back_in_stock: list[dict[str, Any]] = []
        self.jobs = JobQueue(self.config.job_step_seconds, row_error, self._processing_seconds, self._late_apply)
        self.deleted_profiles: list[str] = []
        self.attribution = AttributionBook()

    def now(self) -> float:
        return self.clock()

    def _processing_seconds(self, job: Job) -> float | None:
        """The `profile_job_seconds` fault holds profile bulk imports (only them) in "processing"."""
        return self.faults.profile_job_seconds if job.type == "profile-bulk-import-job" else None

    def _late_apply(self, job: Job) -> LateApply | None:
        """Subscription jobs: held `consent_job_delay_seconds` (+ the job's jitter), maybe newest first."""
        if job.type not in CONSENT_JOB_TYPES:
            return None
        return LateApply(self.faults.consent_job_delay_seconds, self.faults.consent_job_reverse)

    def submit_job(self, job: Job) -> Job:
        """Queue an accepted job; a subscription job draws its jitter from the fault dice now, so two jobs
        accepted in order may fall due in the opposite order."""
        jitter = self.faults.consent_job_jitter_seconds
        if job.type in CONSENT_JOB_TYPES and jitter > 0:  # no draw otherwise: other faults' dice stay as they were
            job.extra_delay = self.dice.random() * jitter
        return self.jobs.submit(job)

    # --- faults -------------------------------------------------------------------------------------
    def set_faults(self, settings: FaultSettings) -> None:
        self.faults = settings
        self.fault_set_at = self.now()
        self.dice = random.Random(settings.seed)

    def fault_anchor(self) -> float:
        if self.fault_set_at is None:
            self.fault_set_at = self.now()
        return self.fault_set_at

    def outage_remaining(self) -> float:
        return max(0.0, self.fault_anchor() + self.faults.outage_seconds - self.now())

    def long_throttle_remaining(self, key: str) -> int:
        if self.faults.long_throttle_endpoint != key:
            return 0
        remaining = self.fault_anchor() + self.faults.long_throttle_seconds - self.now()
        return max(0, int(remaining + 0.999))

    def faults_json(self) -> dict[str, Any]:
        return {
            **self.faults.to_json(),
            "outage_remaining_seconds": round(self.outage_remaining(), 3),
            "long_throttle_remaining_seconds": (
                self.long_throttle_remaining(self.faults.long_throttle_endpoint)
                if self.faults.long_throttle_endpoint
                else 0
            ),
        }

    # --- observation --------------------------------------------------------------------------------
    def reset(self) -> None:
        """Empty every store, the rate-limit windows and stats; faults go back to the start-up settings."""
        self._reset_data()
        self.limiter.reset()
        self.set_faults(self.config.faults)

    def stats(self) -> dict[str, Any]:
        return {
            "endpoints": self.limiter.stats(),
            "duplicates_suppressed": self.events.duplicates_suppressed,
            "events_stored": self.events.count,
            # events per accepted event bulk job -> how many such jobs (how full the fleet's jobs are)
            "bulk_event_job_sizes": {str(size): n for size, n in sorted(self.events.bulk_job_sizes.items())},
            "rate_limits_enabled": self.limiter.enabled,
            "rate_limit_scale": self.limiter.scale,
        }

    def state(self, summary: bool = False) -> dict[str, Any]:
        self.jobs.advance(self.now())
        counts = {
            "profiles": len(self.profiles.by_id),
            "events": self.events.count,
            "duplicates_suppressed": self.events.duplicates_suppressed,
            "catalog_items": len(self.catalog.items),
            "catalog_variants": len(self.catalog.variants),
            "back_in_stock_subscriptions": len(self.back_in_stock),
            "jobs": len(self.jobs.jobs),
            "jobs_pending": len(self.jobs.pending),
        }
        if summary:
            return {"counts": counts}
        metrics = self.events.metrics
        return {
            "counts": counts,
            "profiles": {
                profile.id: {
                    "id": profile.id,
                    **profile.attributes_json(with_subscriptions=True),
                    "lists": sorted(profile.lists),
                }
                for profile in self.profiles.by_id.values()
            },
            "deleted_profiles": list(self.deleted_profiles),
            "events": {
                metrics[metric_id].name: [
                    {
                        "id": event.id,
                        "profile_id": event.profile_id,
                        "unique_id": event.unique_id,
                        "time": iso(event.time),
                        "value": event.value,
                        "value_currency": event.value_currency,
                        "backfill": event.backfill,
                        "properties": event.properties,
                    }
                    for event in events
                ]
                for metric_id, events in self.events.by_metric.items()
            },
            "metrics": {metric.name: metric.id for metric in metrics.values()},
            "duplicates_suppressed": self.events.duplicates_suppressed,
            "catalog": self.catalog.state(),
            "back_in_stock_subscriptions": list(self.back_in_stock),
            "jobs": {job_id: job.summary() for job_id, job in self.jobs.jobs.items()},
        }
