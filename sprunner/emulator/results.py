"""A job's result: the single result call with its four 404 codes, inline results in the
jobs listing, and retention.

- `result_pending`: the job has not finished; `job_id_invalid`: no such job in this run;
  `result_expired`: the job finished more than `retention` seconds ago (24 h by default);
  `result_lost`: kept, but gone (simulate mode: a URL containing `result-lost`).
- Inline, only a `completed` job's result appears, and only when its JSON is at most
  `RESULT_INLINE_CAP` bytes; otherwise `result` is null and the client fetches it alone.
- Fetched pages are freed once expired (`sweep`), so memory follows the retention window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sprunner.emulator.bodies import (
    RESULT_INLINE_CAP,
    fetched_result,
    synthetic_result,
    synthetic_size,
)
from sprunner.emulator.model import EngineError, Job, Mode, StoredRun

DEFAULT_RETENTION = 24 * 3600.0


def iso_ms(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _not_found(code: str, message: str, **extra: Any) -> EngineError:
    return EngineError(404, {"error_code": code, "message": message, **extra})


@dataclass(frozen=True)
class Results:
    mode: Mode
    retention: float = DEFAULT_RETENTION

    def expired(self, run: StoredRun, job: Job, now: float) -> bool:
        return run.elapsed(now) >= job.done_offset + self.retention

    def body(self, run: StoredRun, job: Job) -> dict[str, Any]:
        if self.mode == "simulate":
            return synthetic_result(job, run.execution_ms(job))
        return fetched_result(job, run.execution_ms(job))

    def size(self, run: StoredRun, job: Job) -> int:
        if self.mode == "simulate":
            return synthetic_size(job, run.execution_ms(job))
        return job.result_bytes

    def lookup(self, run: StoredRun, job_id: str) -> Job:
        prefix, _, number = job_id.rpartition("-")
        if prefix != run.run_id or not number.isdigit() or int(number) >= len(run.jobs):
            raise _not_found("job_id_invalid", f"job {job_id} does not belong to run {run.run_id}")
        return run.jobs[int(number)]

    def result(self, run: StoredRun, job: Job, now: float) -> dict[str, Any]:
        """The single result call's answer, or the 404 that says why there is none."""
        job_id = run.job_id(job.index)
        if not run.finished(job, now):
            raise _not_found("result_pending", f"job {job_id} has not finished yet")
        if self.expired(run, job, now):
            completed = run.completed_ms(job)
            age_hours = round((run.elapsed(now) - job.done_offset) / 3600, 4)
            raise _not_found(
                "result_expired",
                f"the result of job {job_id} expired (results are kept {self.retention:g} s)",
                completed_at=iso_ms(completed),
                age_hours=age_hours,
            )
        if job.result_lost:
            raise _not_found("result_lost", f"the result of job {job_id} was lost")
        return self.body(run, job)

    def inline(self, run: StoredRun, job: Job, now: float) -> dict[str, Any] | None:
        if run.status(job, now) != "completed" or job.result_lost:
            return None
        if self.expired(run, job, now) or self.size(run, job) > RESULT_INLINE_CAP:
            return None
        return self.body(run, job)

    def sweep(self, runs: Iterable[StoredRun], now: float) -> None:
        """Free the pages of expired results (fetch mode keeps them in memory until then)."""
        if self.mode != "fetch":
            return
        for run in runs:
            for job in run.jobs:
                if job.html is not None and run.finished(job, now) and self.expired(run, job, now):
                    job.html = None
