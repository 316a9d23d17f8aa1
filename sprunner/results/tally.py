"""What a drain has written so far: ids, counts by status, unavailable bodies, failures.

Rebuilt from the committed rows after a resume, so it always agrees with the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sprunner.api.models import FailedJob

FINISHED_STATUSES = ("completed", "failed", "timeout")


@dataclass(frozen=True)
class FailedJobRow:
    """A failed or timed-out job, as the jobs listing tells it (more than `failed_jobs`)."""

    job_id: str
    url: str | None
    status: str
    custom_id: str | None
    status_code: int | None
    block_reason: str | None
    message: str | None


@dataclass
class Tally:
    written: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    unavailable: Counter[str] = field(default_factory=Counter)
    failed: list[FailedJobRow] = field(default_factory=list)

    def add(self, row: Mapping[str, Any]) -> None:
        self.written.add(str(row["job_id"]))
        status = str(row["status"])
        self.counts[status] += 1
        if row.get("result_unavailable"):
            self.unavailable[str(row["result_unavailable"])] += 1
        if status != "completed":
            self.failed.append(
                FailedJobRow(
                    job_id=str(row["job_id"]),
                    url=row.get("url"),
                    status=status,
                    custom_id=row.get("custom_id"),
                    status_code=row.get("status_code"),
                    block_reason=row.get("block_reason"),
                    message=row.get("message"),
                )
            )

    @property
    def expired(self) -> int:
        return self.unavailable["result_expired"]

    @property
    def lost(self) -> int:
        """Finished jobs written without a body for any reason but expiry."""
        return sum(n for code, n in self.unavailable.items() if code != "result_expired")


def merge_failed(known: Iterable[FailedJob], rows: Iterable[FailedJobRow]) -> tuple[FailedJob, ...]:
    """The drain's failed and timed-out jobs, each with the run's error text when it has one.

    The URL is the run answer's where it has the job: a row's is the masked render
    (`rows.mask_row`), which two requests that differ by a secret share, so it could not
    tell which request the job is (`sprunner.report.shown` does that, and shows it masked)."""
    errors = {job.job_id: job.error for job in known}
    urls = {job.job_id: job.url for job in known}
    return tuple(
        FailedJob(
            job_id=row.job_id,
            url=urls.get(row.job_id) or row.url or "",
            status=row.status,
            error=errors.get(row.job_id) or row.message or row.status,
            custom_id=row.custom_id,
            status_code=row.status_code,
            block_reason=row.block_reason,
        )
        for row in rows
    )
