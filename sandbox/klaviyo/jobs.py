"""Bulk jobs: accepted at once (202), then queued -> processing -> complete, one step per `step` seconds
(a job type may stay processing longer: `processing_seconds`).

Rows are applied when the job reaches `complete`; a row that fails becomes an import error on the job.
Jobs advance on every status read, on `/_sandbox/state`, and from a background tick while the app runs.

Jobs Klaviyo applies asynchronously with no way to watch them (subscription jobs) can be applied late and
out of order (`late_apply`): held until `created_at + delay + Job.extra_delay`, applied in the order they
fall due, or newest first. Whatever completes in one advance is applied in that order, `finish` included.
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
    extra_delay: float = 0.0  # drawn once when the job is accepted (jitter): its own share of a late apply

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


@dataclass(frozen=True)
class LateApply:
    """How a job applied asynchronously is held back: `delay` seconds from acceptance at least (plus the
    job's `extra_delay`); `newest_first`: such jobs are applied as a stack, an older one only once every
    newer one pending has been applied."""

    delay: float = 0.0
    newest_first: bool = False


class JobQueue:
    def __init__(
        self,
        step: float,
        on_row_error: Callable[[Exception, str], ErrorItem],
        processing_seconds: Callable[[Job], float | None] | None = None,
        late_apply: Callable[[Job], LateApply | None] | None = None,
    ) -> None:
        self.step = step
        self.on_row_error = on_row_error
        # both read on every advance, so a setting changed at run time applies to jobs already pending
        self.processing_seconds = processing_seconds  # None: one step
        self.late_apply = late_apply  # None for a job: it completes with the steps, in acceptance order
        self.jobs: dict[str, Job] = {}
        self.pending: list[Job] = []

    def submit(self, job: Job) -> Job:
        self.jobs[job.id] = job
        self.pending.append(job)
        return job

    def advance(self, now: float, finish: bool = False) -> None:
        due: list[Job] = []
        for job in self.pending:
            if job.status == "queued" and (finish or now >= job.created_at + self.step):
                job.status, job.started_at = "processing", now
            if job.status == "processing" and (finish or now >= self._due_at(job)):
                due.append(job)
        for job in self._application_order(due):
            self._run(job, now)
        self.pending = [job for job in self.pending if job.status != "complete"]

    def _processing(self, job: Job) -> float:
        hold = self.processing_seconds(job) if self.processing_seconds is not None else None
        return self.step if hold is None else hold

    def _late(self, job: Job) -> LateApply | None:
        return self.late_apply(job) if self.late_apply is not None else None

    def _due_at(self, job: Job) -> float:
        stepped = job.created_at + self.step + self._processing(job)
        late = self._late(job)
        return stepped if late is None else max(stepped, job.created_at + late.delay + job.extra_delay)

    def _newest_first(self, job: Job) -> bool:
        late = self._late(job)
        return late is not None and late.newest_first

    def _application_order(self, due: list[Job]) -> list[Job]:
        """Jobs without a late apply keep their places (acceptance order); the late ones take their own
        places in the order they fell due (ties: acceptance order) - newest first when so set, which also
        holds an older job back while a newer one is still pending and not due."""
        late = [job for job in due if self._late(job) is not None]
        if not late:
            return due
        due_ids = {job.id for job in due}
        held: set[str] = set()
        newer_waiting = False
        for job in reversed(self.pending):
            if not self._newest_first(job):
                continue
            if job.id not in due_ids:
                newer_waiting = True
            elif newer_waiting:
                held.add(job.id)
        stacked = [job for job in reversed(late) if self._newest_first(job) and job.id not in held]
        timed = sorted((job for job in late if not self._newest_first(job)), key=self._due_at)  # stable
        in_order = iter(timed + stacked)
        ordered: list[Job] = []
        for job in due:
            if self._late(job) is None:
                ordered.append(job)
            elif (next_late := next(in_order, None)) is not None:
                ordered.append(next_late)
        return ordered

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
