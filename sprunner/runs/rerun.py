"""`sprunner retry REPORT.json`: re-run the failed jobs an earlier report lists (SPEC §8).

- What failed comes from the report: per collection, the final failed jobs after its
  retries when it had any, else its run's failed jobs. A run the report shows in
  progress (an interrupted apply's partial report) has nothing to retry yet: it is said so,
  and the next apply adopts that run.
- The requests come from the job files (the report names them), matched by
  `(url, custom_id)` (by url alone where the report gives no custom_id). A URL the report
  shows masked (`***`, an env() value) is matched through the collection's own masking.
  A failed job that matches no request is reported, not retried.
- Each collection gets one run of its companion `<name>.retry` (`runs/retry.py`), under
  `--max-credits`; the new report shows the original run, every retry and the final counts.
- A collection's verdict (`sprunner.verdict`) follows: when the report's run is the
  latest run recorded for it, the final counts after this retry become its verdict (a
  retry that mends what failed clears the collection's health; `judged`).
- Never twice: each step of the companion run is recorded (before it is taken) in the
  parent's `retry.command` ledger for the report's run; a `sprunner retry` killed while it
  waits is adopted by the next `sprunner retry` of the same report. With `results:`, the
  run's rows are written as a run of their own (`runs/retryresults.CommandResults`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sprunner import verdict
from sprunner.api.models import FailedJob, Job
from sprunner.jobfile.model import DesiredCollection, RetryPolicy, request_credits
from sprunner.outcome import CollectionOutcome, RetryOutcome, RunOutcome
from sprunner.runs import companion, failing, retry
from sprunner.runs import retryledger as ledger
from sprunner.runs.retryresults import CommandResults

ANY_FAILURE = RetryPolicy(attempts=1)  # every failed and timed-out job, no delay
RUN_STATES = ("completed", "timed_out", "skipped", "error", "in_progress")


@dataclass(frozen=True)
class Rerun:
    """One collection of the report, and what re-running it means."""

    name: str
    report: Mapping[str, Any]  # the collection's entry in the report
    desired: DesiredCollection | None  # None: no loaded job file declares it any more
    jobs: tuple[Job, ...]  # the failed jobs the report lists
    round: retry.Round | None  # None: nothing to re-run (see `note`)
    note: str | None = None

    @property
    def credits(self) -> int:
        if self.round is None:
            return 0
        return sum(request_credits(r) for r in self.round.pending.requests)

    @property
    def attempt(self) -> int:
        run = self.report.get("run") or {}
        return len(run.get("retries") or ()) + 1


def _failed_jobs(entry: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str | None]:
    """The report's failed jobs of one collection, or why there is nothing to retry."""
    run = entry.get("run")
    if not isinstance(run, Mapping) or run.get("run_id") is None:
        return [], "no run in the report"
    if run.get("status") == "in_progress":
        return [], f"run {run['run_id']} was still in progress: the next apply adopts it"
    if run.get("status") != "completed":
        return [], f"run {run['run_id']} did not complete ({run.get('status')})"
    final = run.get("final")
    jobs = (final or {}).get("failed_jobs") if isinstance(final, Mapping) else None
    listed = jobs if jobs is not None else run.get("failed_jobs") or []
    if not listed:
        return [], "no failed job"
    return [j for j in listed if isinstance(j, Mapping)], None


def _as_job(data: Mapping[str, Any], desired: DesiredCollection, custom_ids: bool) -> Job:
    url = str(data.get("url", ""))
    custom_id = data.get("custom_id") if isinstance(data.get("custom_id"), str) else None
    for request in desired.requests:
        rendered = str(request.get("url"))
        # A URL the report shows masked: the rendered one whose display form it is.
        if url == rendered or desired.mask_url(rendered) == url:
            url = rendered
            if not custom_ids:  # an older report: match by url alone
                custom_id = request.get("custom_id")
            break
    code, reason = data.get("status_code"), data.get("block_reason")
    return Job(
        job_id=str(data.get("job_id", "")),
        run_id="",
        collection_id="",
        status="timeout" if data.get("status") == "timeout" else "failed",
        url=url,
        custom_id=custom_id,
        message=str(data.get("error", "")),
        status_code=code if isinstance(code, int) else None,
        block_reason=reason if isinstance(reason, str) else None,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 1 else 1


def plan(report: Mapping[str, Any], desired: Sequence[DesiredCollection]) -> list[Rerun]:
    """What `retry` would do for each collection of `report` that `desired` selects."""
    by_name = {d.name: d for d in desired}
    reruns = []
    for entry in report.get("collections") or ():
        if not isinstance(entry, Mapping) or entry.get("name") not in by_name:
            continue
        collection = by_name[str(entry["name"])]
        listed, why = _failed_jobs(entry)
        if why is not None:
            reruns.append(Rerun(collection.name, entry, collection, (), None, why))
            continue
        # Old reports name no custom_id: then a job matches every request with its url.
        with_ids = any("custom_id" in j for j in listed)
        jobs = tuple(_as_job(j, collection, with_ids) for j in listed)
        attempts = {
            companion.job_key(job): _count(data.get("attempts"))
            for job, data in zip(jobs, listed, strict=True)
        }
        state = retry.split(collection.requests, jobs, ANY_FAILURE, attempts=attempts)
        state = retry.Round(
            state.pending, state.settled, state.attempts, len(state.pending.unmatched)
        )
        note = None if state.pending.requests else "no failed job matches a request of the job file"
        reruns.append(Rerun(collection.name, entry, collection, jobs, state, note))
    return reruns


async def execute(ctx: retry.Context, rerun: Rerun) -> CollectionOutcome:
    """One companion run for `rerun`, waited for; the collection's outcome as reported."""
    entry, desired = rerun.report, rerun.desired
    assert desired is not None
    retries: tuple[RetryOutcome, ...] = ()
    state = rerun.round
    if state is not None and state.pending.requests:
        outcome, state = await _once(ctx, rerun, desired, state)
        retries = (outcome,)
    return _outcome(entry, desired, retries, state)


async def _once(
    ctx: retry.Context, rerun: Rerun, desired: DesiredCollection, state: retry.Round
) -> tuple[RetryOutcome, retry.Round]:
    """The companion run of this report's retry: the one a killed `sprunner retry` of the
    same report recorded (its ledger, kind `retry.command`) is adopted, never started
    again; else a new one, each step recorded before it is taken."""
    attempts_of = {
        companion.job_key(job): state.attempts.get(companion.job_key(job), 1) + 1
        for job in state.pending.jobs
    }
    results = None
    if desired.results is not None:
        results = CommandResults(ctx.client, ctx.state, desired, attempts_of, warn=ctx.warn)
    parent_run = str((rerun.report.get("run") or {}).get("run_id"))
    book = ledger.load(ctx.state, desired.name, parent_run, kind=ledger.COMMAND_KIND)
    for record in book.attempts:
        if record.attempt != rerun.attempt or record.done:
            continue
        resumed = await retry.resume(ctx, desired, ANY_FAILURE, record, state, results)
        if resumed is not None:
            ledger.save(ctx.state, desired.name, book.with_attempt(replace(record, done=True)))
            return resumed
    outcome, state, _ = await retry.attempt_once(
        ctx, desired, ANY_FAILURE, book, rerun.attempt, state, results
    )
    return outcome, state


def judged(
    state: verdict.BlobStore, outcome: CollectionOutcome, *, now: float
) -> CollectionOutcome:
    """`outcome` with the collection's verdict: updated by this retry when it retried the
    collection's latest recorded run, else the recorded one as it is."""
    run, latest = outcome.run, verdict.read(state, outcome.name)
    if run is None or latest is None or run.run_id != latest.run_id or not run.retries:
        return replace(outcome, verdict=latest)
    made = verdict.of_run(
        replace(run, finished_at=now), credits=latest.credits + run.credits, at=now
    )
    if made is None:
        return replace(outcome, verdict=latest)
    made = replace(made, retries=latest.retries + len(run.retries), started_at=latest.started_at)
    return replace(outcome, verdict=verdict.record(state, outcome.name, made))


def failed(rerun: Rerun, error: str) -> CollectionOutcome:
    """The outcome of a collection whose retry failed with an API error."""
    assert rerun.desired is not None
    outcome = _outcome(rerun.report, rerun.desired, (), rerun.round)
    return dataclasses.replace(outcome, error=error)


def _outcome(
    entry: Mapping[str, Any],
    desired: DesiredCollection,
    retries: tuple[RetryOutcome, ...],
    state: retry.Round | None,
) -> CollectionOutcome:
    run: Mapping[str, Any] = entry.get("run") or {}
    total = int(run.get("total_requests", 0))
    final, reason = None, run.get("reason")
    within = bool(entry.get("ok", False)) or run.get("status") != "completed"
    if state is not None:
        final = failing.final(
            total, state.settled, state.pending, state.attempts, unmatched=state.unmatched
        )
        bad = final.failed_requests + final.timeout_requests
        within = desired.run.max_failed.allows(bad, total)
        reason = None if within else f"{bad} failed or timed-out jobs after the retry"
    status = run.get("status")
    return CollectionOutcome(
        name=desired.name,
        file=desired.file,
        action="unchanged",
        collection_id=entry.get("collection_id"),
        requests=len(desired.requests),
        run=RunOutcome(
            status=status if status in RUN_STATES else "error",
            run_id=run.get("run_id"),
            total_requests=total,
            success_requests=int(run.get("success_requests", 0)),
            failed_requests=int(run.get("failed_requests", 0)),
            timeout_requests=int(run.get("timeout_requests", 0)),
            failed_jobs=tuple(
                FailedJob(
                    str(j.get("job_id")),
                    str(j.get("url")),
                    str(j.get("status")),
                    str(j.get("error")),
                )
                for j in run.get("failed_jobs") or ()
                if isinstance(j, Mapping)
            ),
            credits=sum(r.credits for r in retries),
            reason=reason,
            within_max_failed=within,
            retries=retries,
            final=final,
        ),
    )
