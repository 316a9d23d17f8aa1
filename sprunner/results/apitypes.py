"""What the results code needs from the API, as small local types (the swap point).

`Job` and `JobPage` are the frozen models of `sprunner.api.models`, re-exported here;
`JobsApi` is the part of the client the drain calls.

`get_job_result` raises an error with a `.code` attribute (one of `RESULT_CODES`) when a
result is unavailable; `unavailable_code` reads it without importing the client's error
classes, so a local fake and the real client are interchangeable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from sprunner.api.models import Job, JobPage
from sprunner.errors import SprunnerError

__all__ = [
    "RESULT_CODES",
    "Job",
    "JobPage",
    "JobsApi",
    "ResultUnavailableError",
    "unavailable_code",
]

JobStatus = Literal["processing", "completed", "failed", "timeout"]
RESULT_CODES = frozenset({"result_pending", "result_expired", "result_lost", "job_id_invalid"})


class ResultUnavailableError(SprunnerError):
    """A single result cannot be read: `code` says why (one of `RESULT_CODES`)."""

    def __init__(self, message: str, *, code: str) -> None:
        self.code = code
        super().__init__(message)


def unavailable_code(error: BaseException) -> str | None:
    """The result-unavailable code an error carries, or None for any other error."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) and code in RESULT_CODES else None


class JobsApi(Protocol):
    """The two client calls the drain makes (SPEC §1)."""

    async def list_jobs(
        self,
        collection_id: str,
        run_id: str,
        *,
        name: str,
        cursor: str | None = None,
        limit: int | None = None,
        status_filter: Sequence[str] = (),
        order_by: str | None = None,
        order_dir: str | None = None,
        since_completed_at: str | None = None,
        include_results: bool = False,
    ) -> JobPage: ...

    async def get_job_result(
        self, collection_id: str, run_id: str, job_id: str, *, name: str
    ) -> Mapping[str, Any]: ...


class RunProgress(Protocol):
    """The counts of a polled run the drain reads (the `Run` model has them)."""

    @property
    def success_requests(self) -> int: ...
    @property
    def failed_requests(self) -> int: ...
    @property
    def timeout_requests(self) -> int: ...
    @property
    def total_requests(self) -> int: ...


class FinishedRun(RunProgress, Protocol):
    """A completed run: its jobs listing is whole only once `all_jobs_persisted` is true."""

    @property
    def all_jobs_persisted(self) -> bool: ...
