"""What an apply did, as frozen data: the input of the report, the JUnit file and the summary.

The failure rule is decided here, once: a run's `bad_jobs` (failed + timed out) against
its `max_failed` (`within_max_failed`); a collection is ok when its reconcile succeeded and
its run (if one was waited for) completed within `max_failed`; `failure_reason` words why
not. The summary, the JSON report and the JUnit file only read these.

`Progress` is the frozen snapshot of one collection that the runner publishes while it
works; the live display reads snapshots, never the runner's working values.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sprunner.api.models import Run
from sprunner.errors import EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM
from sprunner.reconcile.actions import Action
from sprunner.runs.verdict import Health, Verdict

RunState = Literal["completed", "timed_out", "skipped", "error", "in_progress"]
RetryState = Literal["completed", "timed_out", "in_progress", "refused", "error"]


@dataclass(frozen=True)
class ShownJob:
    """A failed job as a report shows it (`sprunner.report.shown`): its `url` and `custom_id` as
    sprunner shows the request it is (env() values masked), and `request`, the keyed
    fingerprint of that request (`sprunner.report.fingerprints`); None when the job is no
    request of the collection, or could be several."""

    job_id: str
    url: str
    status: str
    error: str
    custom_id: str | None = None  # when the API gives them
    status_code: int | None = None
    block_reason: str | None = None
    request: str | None = None


@dataclass(frozen=True)
class FinalJob:
    """A request still failing after every retry, as its last job left it."""

    job_id: str
    url: str
    custom_id: str | None
    status: str  # failed | timeout
    error: str
    status_code: int | None = None
    block_reason: str | None = None
    attempts: int = 1  # runs the request took, the first included
    request: str | None = None  # as `ShownJob.request`, once shown


@dataclass(frozen=True)
class RetryOutcome:
    """One retry run of the companion `<name>.retry` (SPEC section 8)."""

    attempt: int  # 1 for the first retry
    status: RetryState
    run_id: str | None = None
    requests: int = 0
    success_requests: int = 0
    failed_requests: int = 0
    timeout_requests: int = 0
    credits: int = 0  # charged: its successful requests x their cost (`sprunner.runs.credits`)
    adopted: bool = False
    reason: str | None = None
    collection_id: str | None = None  # the companion's: where the run's jobs are listed
    results: Mapping[str, Any] | None = None  # its own results file (`sprunner retry`)


@dataclass(frozen=True)
class FinalCounts:
    """Per request, after the retries: what `max_failed` and the exit code judge."""

    total_requests: int
    success_requests: int
    failed_requests: int
    timeout_requests: int
    failed_jobs: tuple[FinalJob, ...] = ()
    unmatched: int = 0  # failed jobs that matched no rendered request: reported, not retried


@dataclass(frozen=True)
class RunOutcome:
    status: RunState
    run_id: str | None = None
    total_requests: int = 0
    success_requests: int = 0
    failed_requests: int = 0
    timeout_requests: int = 0
    failed_jobs: tuple[ShownJob, ...] = ()
    # Charged (`sprunner.runs.credits`): successful requests x cost, the retries included; 0
    # for a run not seen to its end by this apply.
    credits: int = 0
    adopted: bool = False  # an in-progress or interrupted run taken over, not started here
    reason: str | None = None  # why skipped, timed out or failed
    within_max_failed: bool = True
    refused: bool = False  # skipped because --max-credits would be passed
    retries: tuple[RetryOutcome, ...] = ()  # the retry runs after this run, in order
    final: FinalCounts | None = None  # per request after the retries; None: no retry phase
    results: Mapping[str, Any] | None = None  # {to, lines, bytes, expired, missing} (SPEC §7)
    started_at: float | None = None  # epoch s: the start (ours: just before the POST)
    finished_at: float | None = None  # epoch s: seen completed, or given up on

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    @property
    def bad_jobs(self) -> int:
        """The jobs that count against `max_failed`: failed plus timed out (after retries)."""
        if self.final is not None:
            return self.final.failed_requests + self.final.timeout_requests
        return self.failed_requests + self.timeout_requests

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
    # Runs whose results file is not published yet (SPEC section 10), and the earlier runs'
    # results this apply finished (results/catchup.py).
    results_pending: tuple[Mapping[str, Any], ...] = ()
    results_caught_up: tuple[Mapping[str, Any], ...] = ()
    # The latest verdict after this apply (SPEC §9): this apply's run's, else the one an
    # earlier apply recorded; None when none is known.
    verdict: Verdict | None = None
    # For a collection this apply did not run to its end: its health by `verdict` and
    # `run.max_age` (a failed last run, or stale); None when this apply's run judges it.
    health: Health | None = None
    max_age: float | None = None  # `run.max_age` in seconds (the metrics show it)
    failed_at: float | None = None  # epoch s: when its error was known (None: no error yet)

    @property
    def ok(self) -> bool:
        if self.error is not None or self.action == "error" or self.results_pending:
            return False
        if self.health is not None and not self.health.ok:
            return False
        return self.run is None or self.run.ok

    @property
    def stale(self) -> bool:
        return self.health is not None and self.health.stale

    @property
    def failure_reason(self) -> str:
        """Why this collection failed, in one line (meaningful when not `ok`)."""
        run = self.run
        if run is not None and run.status == "completed" and not run.within_max_failed:
            return f"{run.bad_jobs} of {run.total_requests} jobs failed or timed out"
        if self.error is None and self.results_pending and (run is None or run.ok):
            runs = ", ".join(str(p["run_id"]) for p in self.results_pending)
            return f"the results of run {runs} are still pending"
        if self.error is None and (run is None or run.ok) and self.health is not None:
            return self.health.reason or "failed"
        return self.error or (run.reason if run is not None else None) or "failed"


@dataclass(frozen=True)
class Progress:
    """One collection as the live display sees it at one moment."""

    name: str
    action: str | None
    run_state: RunState | None
    run: Run | None
    credits: int = 0  # charged so far (`sprunner.runs.credits`)


@dataclass(frozen=True)
class ApplyOutcome:
    api_url: str
    started_at: float
    finished_at: float
    collections: tuple[CollectionOutcome, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    interrupted_by: int | None = None  # the signal that stopped the apply, if one did
    # Why the apply as a whole failed (invalid files, the API unusable, the state unwritable,
    # a crash), with the exit code it ends with; None when it ran to its end.
    error: str | None = None
    failed_exit_code: int | None = None
    apply_id: str | None = None  # the id the apply logged at its start (and sent with writes)

    @property
    def interrupted(self) -> bool:
        return self.interrupted_by is not None

    @property
    def ok(self) -> bool:
        """True exactly when the exit code is 0."""
        if self.error is not None or self.failed_exit_code is not None:
            return False
        return not self.interrupted and all(c.ok for c in self.collections)

    @property
    def exit_code(self) -> int:
        """The exit code this outcome ends the command with (SPEC §3)."""
        if self.failed_exit_code is not None:
            return self.failed_exit_code
        if self.interrupted_by is not None:
            return EXIT_SIGTERM if self.interrupted_by == signal.SIGTERM else EXIT_SIGINT
        return EXIT_OK if self.ok else EXIT_FAILED

    def count(self, action: Action) -> int:
        return sum(1 for c in self.collections if c.action == action)

    @property
    def runs(self) -> tuple[RunOutcome, ...]:
        return tuple(
            c.run for c in self.collections if c.run is not None and c.run.run_id is not None
        )
