"""One collection's way through an apply, as frozen values: each phase of the runner returns
a result, and `Track.fold` makes the next track from the last one and that result.

Phases and their results, in order:
- reconcile → `Reconciled` (created / updated / unchanged / deleted / error, the id);
- decide → `Decided` (run or not, a run to adopt, why skipped; the credit brake too);
- start or adopt → `Recreated` (gone remotely, created again) then `Begun` (the run);
- wait → `Seen` (each poll), then `Finished` (completed or timed out);
- retry → `Retrying` (in flight again: a partial report says so), then `Retried` (the
  retry runs of `<name>.retry` and the final per-request counts);
- judge → `Judged` (the latest verdict after the retries, recorded in the state, and the
  health of a collection this apply did not run to its end: `sprunner.runs.judge`);
- any phase → `Failed` (an API error for this collection only);
- before the run phase and at the end → `ResultsState` (earlier runs' results published,
  and those still pending: `results/catchup.py`).

The track keeps what the API said; `outcome()` shows it (`sprunner.report.shown`: failed jobs as
the requests they are, masked, with their fingerprints), with the jobs listing's details.

Credits are the ones charged (`sprunner.runs.credits`): the cost of the requests that succeeded,
after the retries, fixed when the run is seen to its end (`charged`); an estimate before.

A `Track` is never changed in place: the runner replaces it, so the live display and a
partial report after a signal always read a consistent value (`Progress`, `CollectionOutcome`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sprunner.api.models import FailedJob, Job, Run
from sprunner.reconcile.actions import Action
from sprunner.reconcile.plan import PlannedCollection
from sprunner.report import shown
from sprunner.report.fingerprints import RequestFingerprints
from sprunner.report.outcome import CollectionOutcome, FinalJob, Progress, RunOutcome, RunState
from sprunner.results.catchup import ResultsState
from sprunner.retry.loop import Retried
from sprunner.runs.counts import counts_of
from sprunner.runs.credits import charged, charged_for, cost_per_request
from sprunner.runs.start import Started
from sprunner.runs.verdict import Health, Verdict

# The error of a collection whose change was still in flight when the apply was stopped.
CUT_SHORT = "interrupted before its change was confirmed; the next apply checks it again"


@dataclass(frozen=True)
class Reconciled:
    action: Action
    collection_id: str | None = None
    error: str | None = None
    unchecked: bool = False  # a create whose replay check waits for a run start (execute.py)
    at: float = field(default_factory=time.time)  # epoch s: when it was known (an error's time)


@dataclass(frozen=True)
class Decided:
    wants_run: bool
    adopted: Started | None = None  # a run to wait for instead of starting one
    skipped: str | None = None  # why no run (when wants_run is False)
    refused: bool = False  # skipped by --max-credits, not by the job file


@dataclass(frozen=True)
class Recreated:
    collection_id: str  # gone remotely when its run was started; created again


@dataclass(frozen=True)
class Begun:
    started: Started


@dataclass(frozen=True)
class Seen:
    run: Run


@dataclass(frozen=True)
class Finished:
    run: Run
    state: RunState  # completed or timed_out
    reason: str | None = None
    results: Mapping[str, Any] | None = None  # the report's `results` (results/delivery.py)
    at: float = field(default_factory=time.time)  # epoch s: when it was seen to its end


@dataclass(frozen=True)
class Retrying:
    """The run completed with failed jobs that are being retried: not done yet."""


@dataclass(frozen=True)
class Judged:
    """The lifecycle's last step: the latest verdict, and the health of a collection this
    apply did not run to its end (None when this apply's run judges it)."""

    verdict: Verdict | None
    health: Health | None = None


@dataclass(frozen=True)
class Failed:
    error: str
    at: float = field(default_factory=time.time)  # epoch s: when the error ended the phase


PhaseResult = (
    Reconciled
    | Decided
    | Recreated
    | Begun
    | Seen
    | Finished
    | Retrying
    | Retried
    | Judged
    | Failed
    | ResultsState
)
# The jobs listing's word on failed jobs (custom_id, codes: `failedjobs.py`): name -> job
# id -> job.
Details = Mapping[str, Mapping[str, Job]]


@dataclass(frozen=True)
class Track:
    """Everything known about one collection so far in this apply."""

    item: PlannedCollection
    action: Action | None = None
    collection_id: str | None = None
    error: str | None = None
    wants_run: bool = False
    adopted: Started | None = None
    run: Run | None = None
    run_state: RunState | None = None
    run_reason: str | None = None
    refused: bool = False
    retried: Retried | None = None
    results: Mapping[str, Any] | None = None
    run_started_at: float | None = None
    run_finished_at: float | None = None
    unchecked: bool = False
    results_caught_up: tuple[Mapping[str, Any], ...] = ()
    results_pending: tuple[Mapping[str, Any], ...] = ()
    verdict: Verdict | None = None
    health: Health | None = None
    charged: int | None = None  # credits charged, once the run (and its retries) is over
    failed_at: float | None = None  # when an error was folded in (JUnit's time of the case)

    @property
    def name(self) -> str:
        return self.item.name

    def fold(self, result: PhaseResult) -> Track:
        """The track after `result`."""
        if isinstance(result, Reconciled):
            return replace(
                self,
                action=result.action,
                collection_id=result.collection_id,
                error=result.error,
                unchecked=result.unchecked,
                failed_at=result.at if result.error is not None else self.failed_at,
            )
        if isinstance(result, Decided):
            return self._decided(result)
        if isinstance(result, Recreated):
            return replace(
                self, action="create", collection_id=result.collection_id, unchecked=False
            )
        if isinstance(result, Begun):
            started = result.started
            adopted = started if started.adopted else self.adopted
            return replace(
                self,
                adopted=adopted,
                run=started.run,
                run_state="in_progress",
                run_started_at=started.started_at,
            )
        if isinstance(result, Seen):
            return replace(self, run=result.run)
        if isinstance(result, Finished):
            reason = result.reason if result.reason is not None else self.run_reason
            return replace(
                self,
                run=result.run,
                run_state=result.state,
                run_reason=reason,
                results=result.results,
                run_finished_at=result.at,
                charged=self._charged(result.run.failed_jobs) if result.run.done else None,
            )
        if isinstance(result, Retrying):
            return replace(self, run_state="in_progress")
        if isinstance(result, Retried):
            return self._retried(result)
        if isinstance(result, ResultsState):
            return replace(
                self,
                results_caught_up=self.results_caught_up + result.caught_up,
                results_pending=self.results_pending if result.pending is None else result.pending,
            )
        if isinstance(result, Judged):
            return replace(self, verdict=result.verdict, health=result.health)
        return self._failed(result)

    def _detailed(self, jobs: Mapping[str, Job] | None) -> Run | None:
        """The run, each failed job with its custom_id, status_code and block_reason."""
        if self.run is None or not jobs:
            return self.run
        failed = tuple(
            replace(
                j,
                custom_id=jobs[j.job_id].custom_id,
                status_code=jobs[j.job_id].status_code,
                block_reason=jobs[j.job_id].block_reason,
            )
            if j.job_id in jobs
            else j
            for j in self.run.failed_jobs
        )
        return replace(self.run, failed_jobs=failed)

    def _retried(self, result: Retried) -> Track:
        """The final outcome is judged per request, after the retries (SPEC section 8)."""
        reason = self.run_reason
        max_failed = self.item.desired.run.max_failed if self.item.desired else None
        if max_failed is not None:
            final = result.final
            bad = final.failed_requests + final.timeout_requests
            reason = None
            if not max_failed.allows(bad, final.total_requests):
                reason = (
                    f"{bad} failed or timed-out jobs after {len(result.retries)} retries; "
                    f"max_failed is {max_failed}"
                )
        return replace(
            self,
            retried=result,
            charged=self._charged(result.final.failed_jobs),
            run_state="completed",
            run_reason=reason,
            results=result.results if result.results is not None else self.results,
            error=result.error or self.error,
        )

    def _charged(self, failed: Sequence[FailedJob] | Sequence[FinalJob]) -> int | None:
        """What the run is charged once over: its cost less the requests still failing."""
        desired = self.item.desired
        if desired is None:
            return None
        return charged_for(desired.requests, ((job.url, job.custom_id) for job in failed))

    def _decided(self, result: Decided) -> Track:
        if not result.wants_run:
            return replace(
                self,
                wants_run=False,
                refused=result.refused,
                run_state="skipped",
                run_reason=result.skipped,
            )
        if result.adopted is None:
            return replace(self, wants_run=True)
        # In flight from now on: a partial report after a signal lists it with its id.
        adopted = result.adopted
        return replace(
            self,
            wants_run=True,
            adopted=adopted,
            run=adopted.run,
            run_state="in_progress",
            run_started_at=adopted.started_at,
        )

    def _failed(self, result: Failed) -> Track:
        failed = replace(self, error=result.error, failed_at=result.at)
        if self.action is None:
            return replace(failed, action="error")
        if self.run_state is None or self.run_state == "in_progress":
            return replace(failed, run_state="error", run_reason=result.error)
        return failed

    @property
    def credits(self) -> int:
        """Charged (`sprunner.runs.credits`): exact once the run is over, after its retries (its
        cost less the requests still failing); an estimate while it goes on."""
        desired, run = self.item.desired, self.run
        if desired is None or run is None:
            return 0
        if self.charged is not None:
            return self.charged
        retries = self.retried.credits if self.retried is not None else 0
        return charged(run.success_requests, cost_per_request(desired)) + retries

    def progress(self) -> Progress:
        return Progress(self.name, self.action, self.run_state, self.run, self.credits)

    def outcome(
        self, prints: RequestFingerprints | None = None, details: Mapping[str, Job] | None = None
    ) -> CollectionOutcome:
        """The collection's outcome, its failed jobs shown (`sprunner.report.shown`) with their
        `details` (job id -> the listing's job); with `prints`, each names its request."""
        desired = self.item.desired
        return CollectionOutcome(
            name=self.name,
            file=desired.file if desired is not None else None,
            action=self.action or "error",
            collection_id=self.collection_id or self.item.remote_id,
            requests=self.item.requests,
            run=self._run_outcome(prints, self._detailed(details)),
            error=self.error if self.action is not None else self.error or CUT_SHORT,
            results_pending=self.results_pending,
            results_caught_up=self.results_caught_up,
            verdict=self.verdict,
            health=self.health,
            max_age=desired.run.max_age if desired is not None else None,
            failed_at=self.failed_at,
        )

    def _run_outcome(
        self, prints: RequestFingerprints | None, counts: Run | None
    ) -> RunOutcome | None:
        if self.run_state is None:
            return None
        desired = self.item.desired
        max_failed = desired.run.max_failed if desired is not None else None
        within = True
        final = self.retried.final if self.retried is not None else None
        if final is not None and max_failed is not None:
            bad = final.failed_requests + final.timeout_requests
            within = max_failed.allows(bad, final.total_requests)
        elif counts is not None and max_failed is not None:
            bad = counts.failed_requests + counts.timeout_requests
            within = max_failed.allows(bad, counts.total_requests)
        return RunOutcome(
            status=self.run_state,
            run_id=counts.run_id if counts else None,
            **counts_of(counts),
            failed_jobs=shown.failed_jobs(desired, counts.failed_jobs, prints) if counts else (),
            # Charged by a run seen to its end here (`sprunner.runs.credits`): an interrupted
            # apply leaves it to the apply that adopts the run, so it is counted once.
            credits=self.credits if self.run_state in ("completed", "timed_out") else 0,
            adopted=self.adopted is not None,
            reason=self.run_reason,
            within_max_failed=within,
            refused=self.refused,
            retries=self.retried.retries if self.retried is not None else (),
            final=shown.final_counts(desired, final, prints),
            results=self.results,
            started_at=self.run_started_at,
            finished_at=self.run_finished_at,
        )


def outcomes(
    tracks: Iterable[Track],
    prints: RequestFingerprints | None = None,
    details: Details | None = None,
) -> tuple[CollectionOutcome, ...]:
    """Every collection's outcome (what a report, even a partial one, shows)."""
    found = details or {}
    return tuple(track.outcome(prints, found.get(track.name)) for track in tracks)
