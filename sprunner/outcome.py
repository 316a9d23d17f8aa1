"""What an apply did, as frozen data: the input of the report, the JUnit file and the summary.

`ok` is decided here, once: a collection is ok when its reconcile succeeded and its run
(if one was waited for) completed within `max_failed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sprunner.api.models import FailedJob

Action = Literal["created", "updated", "unchanged", "deleted", "error"]
RunState = Literal["completed", "timed_out", "skipped", "error", "in_progress"]


@dataclass(frozen=True)
class RunOutcome:
    status: RunState
    run_id: str | None = None
    total_requests: int = 0
    success_requests: int = 0
    failed_requests: int = 0
    timeout_requests: int = 0
    failed_jobs: tuple[FailedJob, ...] = ()
    credits: int = 0  # what this run costs; 0 when no run was started by this apply
    adopted: bool = False  # an in-progress or interrupted run taken over, not started here
    reason: str | None = None  # why skipped, timed out or failed
    within_max_failed: bool = True
    refused: bool = False  # skipped because --max-credits would be passed

    @property
    def ok(self) -> bool:
        if self.status == "skipped":
            # Skips the job file asked for (when / schedule / overlap) are fine; a run
            # refused by --max-credits is work that did not get done.
            return not self.refused
        return self.status == "completed" and self.within_max_failed


@dataclass(frozen=True)
class CollectionOutcome:
    name: str
    file: str | None
    action: Action
    collection_id: str | None = None
    requests: int = 0
    run: RunOutcome | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        if self.error is not None or self.action == "error":
            return False
        return self.run is None or self.run.ok


@dataclass(frozen=True)
class ApplyOutcome:
    api_url: str
    started_at: float
    finished_at: float
    collections: tuple[CollectionOutcome, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    interrupted_by: int | None = None  # the signal that stopped the apply, if one did

    @property
    def interrupted(self) -> bool:
        return self.interrupted_by is not None

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(c.ok for c in self.collections)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.collections if c.action == action)

    @property
    def runs(self) -> tuple[RunOutcome, ...]:
        return tuple(
            c.run for c in self.collections if c.run is not None and c.run.run_id is not None
        )
