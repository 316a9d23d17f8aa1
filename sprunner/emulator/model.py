"""The emulator's stored records: collections, runs and their jobs, and `EngineError`.

Plain mutable dataclasses (they change while runs progress), shared by the engine, the jobs
listing and the results. Times come in two clocks: wall-clock epoch seconds for what the
API shows (`created_at`, `completed_at`), and monotonic seconds for what the emulator
decides (is a job done yet, has its result expired), so a clock jump never reorders jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["fetch", "simulate"]
Outcome = Literal["completed", "failed", "timeout"]
JOB_STATUSES = ("processing", "completed", "failed", "timeout")


class EngineError(Exception):
    """An answer other than success: `detail` is a string or, for results, an object."""

    def __init__(self, status: int, detail: str | dict[str, Any]) -> None:
        self.status = status
        self.detail = detail
        super().__init__(str(detail))


@dataclass
class StoredCollection:
    id: str
    name: str
    requests: list[dict[str, Any]]
    created_at: float


@dataclass(slots=True)
class Job:
    """One request of a run. Until `outcome` is set (or `done_offset` has passed, in
    simulate mode) the job is `processing`."""

    index: int
    url: str
    custom_id: str | None
    outcome: Outcome | None = None  # simulate: decided at start; fetch: set when fetched
    status_code: int | None = None
    message: str = ""
    block_reason: str | None = None
    done_offset: float = 0.0  # seconds after the run started when the job finishes
    started_offset: float = 0.0
    result_lost: bool = False
    body_size: int = 0  # simulate: the result's size in bytes (see bodies.py)
    html: str | None = None  # fetch: the page, kept until the result expires
    result_bytes: int = 0  # fetch: the result's size once rendered
    fetched: bool = False  # fetch: the outcome is final


@dataclass
class StoredRun:
    run_id: str
    collection_id: str
    created_at: float  # wall clock, for the API
    started: float  # monotonic, for progress
    jobs: list[Job] = field(default_factory=list)
    fetch_done: bool = False
    # The collection's requests when the run started (a later PUT does not change them).
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [job.url for job in self.jobs]

    def job_id(self, index: int) -> str:
        # Zero-padded so that ordering ids as strings orders them as jobs.
        return f"{self.run_id}-{index:07d}"

    def elapsed(self, now: float) -> float:
        return now - self.started

    def finished(self, job: Job, now: float) -> bool:
        return job.outcome is not None and now - self.started >= job.done_offset

    def status(self, job: Job, now: float) -> str:
        return job.outcome if job.outcome is not None and self.finished(job, now) else "processing"

    def completed_ms(self, job: Job) -> int:
        """`completed_at` in whole milliseconds since the epoch (what the API shows)."""
        return int((self.created_at + job.done_offset) * 1000)

    def execution_ms(self, job: Job) -> int:
        return max(0, int((job.done_offset - job.started_offset) * 1000))
