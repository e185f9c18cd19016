"""Bulk jobs: accepted at once (202), then queued -> processing -> complete, one step per `step` seconds
(a job type may stay processing longer: `processing_seconds`).

Rows are applied when the job reaches `complete`; a row that fails becomes an import error on the job.
Jobs advance on every status read, on `/_sandbox/state`, and from a background tick while the app runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.klaviyo.errors import ApiError, ErrorItem
from sandbox.klaviyo.timeutil import from_epoch, iso

RowAction = Callable[[], None]  # raises ApiError (or ProfileConflict mapped by the caller) when the row fails


@dataclass
class Job:
    id: str
    type: str
    created_at: float
    rows: list[tuple[str, RowAction]]  # (pointer of the row in the request, action)
    status: str = "queued"
    started_at: float | None = None
    completed_at: float | None = None
    completed_count: int = 0
    failed_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    has_status_endpoint: bool = True

    @property
    def total_count(self) -> int:
        return len(self.rows)

    def attributes_json(self, with_errors: bool) -> dict[str, Any]:
        result: dict[str, Any] = {
            "status": self.status,
            "created_at": iso(from_epoch(self.created_at)),
            "total_count": self.total_count,
            "completed_count": self.completed_count,
            "failed_count": self.failed_count,
            "completed_at": iso(from_epoch(self.completed_at)) if self.completed_at else None,
            "expires_at": iso(from_epoch(self.created_at + 7 * 86400)),
        }
        if with_errors:
            result["errors"] = [
                {key: error[key] for key in ("id", "code", "title", "detail", "source")} for error in self.errors
            ]
        else:
            result["started_at"] = iso(from_epoch(self.started_at)) if self.started_at else None
        return result

    def summary(self) -> dict[str, Any]:
        return {"type": self.type, **self.attributes_json(with_errors=True)}


class JobQueue:
    def __init__(
        self,
        step: float,
        on_row_error: Callable[[Exception, str], ErrorItem],
        processing_seconds: Callable[[Job], float | None] | None = None,
    ) -> None:
        self.step = step
        self.on_row_error = on_row_error
        # read on every advance, so a hold set at run time applies to jobs already pending; None: one step
        self.processing_seconds = processing_seconds
        self.jobs: dict[str, Job] = {}
        self.pending: list[Job] = []

    def submit(self, job: Job) -> Job:
        self.jobs[job.id] = job
        self.pending.append(job)
        return job

    def advance(self, now: float, finish: bool = False) -> None:
        still: list[Job] = []
        for job in self.pending:
            if job.status == "queued" and (finish or now >= job.created_at + self.step):
                job.status, job.started_at = "processing", now
            if job.status == "processing" and (finish or now >= job.created_at + self.step + self._processing(job)):
                self._run(job, now)
            if job.status != "complete":
                still.append(job)
        self.pending = still

    def _processing(self, job: Job) -> float:
        hold = self.processing_seconds(job) if self.processing_seconds is not None else None
        return self.step if hold is None else hold

    def _run(self, job: Job, now: float) -> None:
        for pointer, action in job.rows:
            try:
                action()
                job.completed_count += 1
            except (ApiError, Exception) as exc:  # a bad row never stops the job, it is reported
                job.failed_count += 1
                item = self.on_row_error(exc, pointer)
                job.errors.append(item.to_json())
        job.status, job.completed_at = "complete", now

    def clear(self) -> None:
        self.jobs.clear()
        self.pending.clear()
