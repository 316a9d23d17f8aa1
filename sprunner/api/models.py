"""Frozen models of the API's answers.

Parsing is tolerant of extra fields (the API grows) and strict about missing ones: a
missing field raises `BadAnswerError` naming the call, never a KeyError later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

RunStatus = Literal["in_progress", "completed"]
JobStatus = Literal["processing", "completed", "failed", "timeout"]
JOB_STATUSES: tuple[JobStatus, ...] = ("processing", "completed", "failed", "timeout")


@dataclass(frozen=True)
class CollectionRef:
    """A collection as the API lists it: it never returns the request list."""

    id: str
    name: str


@dataclass(frozen=True)
class WriteResult:
    """Answer of create / update: the collection plus what the API said about the body."""

    id: str
    name: str
    message: str = ""
    duplicates_skipped: int = 0
    blocked_urls: tuple[str, ...] = ()
    invalid_items: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FailedJob:
    job_id: str
    url: str
    status: str
    error: str
    # When the answer gives them (the jobs listing always does; a run's failed_jobs may).
    custom_id: str | None = None
    status_code: int | None = None
    block_reason: str | None = None


@dataclass(frozen=True)
class Run:
    run_id: str
    collection_id: str
    status: RunStatus
    total_requests: int
    success_requests: int
    failed_requests: int
    timeout_requests: int
    failed_jobs: tuple[FailedJob, ...] = ()
    created_at: float | None = None
    job_ids: tuple[str, ...] = ()
    # None when the answer does not say (older deployments). The jobs listing of a run is
    # complete only once this is True: until then, jobs may still be on their way to it.
    all_jobs_persisted: bool | None = None

    @property
    def done(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class Job:
    """One job of a run as the jobs listing gives it (SPEC §1).

    Timestamps are the API's ISO-8601 strings, kept as given: the high-water mark of a
    drain is compared and sent back in the API's own format. `has_result` tells whether
    the answer carried a `result` key at all (asked with `include_results`); `result` is
    None either when it did not or when the body was over the inline cap: fetch it alone.
    """

    job_id: str
    run_id: str
    collection_id: str
    status: JobStatus
    url: str
    status_code: int | None = None
    message: str | None = None
    custom_id: str | None = None
    queued_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    execution_time_ms: float | None = None
    retries_attempted: int | None = None
    block_reason: str | None = None
    is_success: bool | None = None
    result: Mapping[str, Any] | None = None
    has_result: bool = False

    @property
    def finished(self) -> bool:
        return self.status != "processing"


@dataclass(frozen=True)
class JobPage:
    """One page of a run's jobs. `has_more` always comes with a `cursor_next` to follow."""

    items: tuple[Job, ...]
    cursor_next: str | None
    has_more: bool
