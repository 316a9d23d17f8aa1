"""What a drain has written so far: ids, counts by status, unavailable bodies, failures.

Rebuilt from the committed rows after a resume, so it always agrees with the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
