"""`sprunner retry REPORT.json`: re-run the failed jobs an earlier report lists (SPEC §8).

- What failed comes from the report: per collection, the final failed jobs after its
  retries when it had any, else its run's failed jobs. A run the report shows in
  progress (an interrupted apply's partial report) has nothing to retry yet: it is said so,
  and the next apply adopts that run.
- The requests come from the job files (the report names them), matched by the keyed
  fingerprint each failed job carries (`request`, `sprunner.report.fingerprints`), never by its
  URL: a URL the report shows masked (`***`) may be that of several requests. A report
  whose failed jobs cannot all be matched exactly (no fingerprint: an older report, or a
  job that matched none or several requests; another API key; a request no longer in
  the job file) is refused (`Unmatched`, exit 2) before anything is sent: never guessed.
- Each collection gets one run of its companion `<name>.retry` (`retry/loop.py`), under
  `--max-credits`; the new report shows the original run, every retry and the final counts.
- A collection's verdict (`sprunner.runs.verdict`) follows: when the report's run is the
  latest run recorded for it, the final counts after this retry become its verdict (a
  retry that mends what failed clears the collection's health; `judged`).
- Never twice: each step of the companion run is recorded (before it is taken) in the
  parent's `retry.command` ledger for the report's run; a `sprunner retry` killed while it
  waits is adopted by the next `sprunner retry` of the same report. With `results:`, the
  run's rows are written as a run of their own (`runs/retryresults.CommandResults`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sprunner.api.models import Job
from sprunner.apply.context import ApplyContext
from sprunner.errors import UsageError
from sprunner.jobfile.model import DesiredCollection, RetryPolicy, request_credits
from sprunner.report import shown
from sprunner.report.fingerprints import RequestFingerprints as Prints
from sprunner.report.outcome import CollectionOutcome, RetryOutcome, RunOutcome, ShownJob
from sprunner.retry import companion, failing, ledger
from sprunner.retry import loop as retry
from sprunner.retry.rerunresults import CommandResults
from sprunner.runs import verdict
from sprunner.runs.counts import counts_in

ANY_FAILURE = RetryPolicy(attempts=1)  # every failed and timed-out job, no delay
RUN_STATES = ("completed", "timed_out", "skipped", "error", "in_progress")
MAX_PROBLEMS = 20  # lines of a refusal; the count of the rest follows
_ABSENT = object()


@dataclass(frozen=True)
class Rerun:
    """One collection of the report, and what re-running it means."""

    name: str
    report: Mapping[str, Any]  # the collection's entry in the report
    desired: DesiredCollection | None  # None: no loaded job file declares it any more
    jobs: tuple[Job, ...]  # the failed jobs the report lists, as the requests they are
    round: retry.Round | None  # None: nothing to re-run (see `note`)
    prints: Prints  # the requests' fingerprints, under the API key
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


class Unmatched(UsageError):
    """The report's failed jobs cannot all be matched exactly to rendered requests: the
    retry is refused (exit 2), nothing is sent, nothing is guessed."""

    def __init__(self, problems: Sequence[str]) -> None:
        shown = [f"  {p}" for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"  ... and {len(problems) - MAX_PROBLEMS} more")
        super().__init__(
            "cannot tell exactly which requests failed, so nothing is retried:\n" + "\n".join(shown)
        )


def _as_job(data: Mapping[str, Any], request: Mapping[str, Any]) -> Job:
    """The report's failed job as a job of the request it is (its own url and custom_id)."""
    code, reason = data.get("status_code"), data.get("block_reason")
    url, custom_id = companion.request_key(request)
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


def _why_not(fingerprint: Any, known: Mapping[str, list[int]], prints: Prints) -> str | None:
    """Why a failed job's `request` names no single request of the job file; None if it does."""
    if fingerprint is _ABSENT:
        return (
            "the report does not name the requests of its failed jobs (it was written by an "
            "older sprunner): apply again for a report that does"
        )
    if not isinstance(fingerprint, str):
        return "the report could not tell which request it is (none or several matched its URL)"
    if not prints.owns(fingerprint):
        return "the report was written with another API key: its requests cannot be checked"
    found = known.get(fingerprint, ())
    if not found:
        return "its request is not in the job file (changed since the report?)"
    return None if len(found) == 1 else "it matches several requests of the job file"


def _matched(
    collection: DesiredCollection,
    listed: Sequence[Mapping[str, Any]],
    prints: Prints,
    problems: list[str],
) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(failed job, its request) for each job of the report, by the request's keyed
    fingerprint (`sprunner.report.fingerprints`), in job-file order; what cannot be matched goes
    to `problems`."""
    known: dict[str, list[int]] = defaultdict(list)
    for i, request in enumerate(collection.requests):
        known[prints.of(request)].append(i)
    pairs: dict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for data in listed:
        fingerprint = data.get("request", _ABSENT)
        why = _why_not(fingerprint, known, prints)
        if why is not None:
            problems.append(f"{collection.name}: failed job {data.get('job_id')}: {why}")
            continue
        index = known[fingerprint][0]
        pairs.setdefault(index, (data, collection.requests[index]))  # listed twice: once
    return [pairs[index] for index in sorted(pairs)]  # in job-file order


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 1 else 1


def plan(
    report: Mapping[str, Any], desired: Sequence[DesiredCollection], prints: Prints
) -> list[Rerun]:
    """What `retry` would do for each collection of `report` that `desired` selects.

    Raises `Unmatched` when a failed job's request cannot be told exactly."""
    by_name = {d.name: d for d in desired}
    reruns = []
    problems: list[str] = []
    for entry in report.get("collections") or ():
        if not isinstance(entry, Mapping) or entry.get("name") not in by_name:
            continue
        collection = by_name[str(entry["name"])]
        listed, why = _failed_jobs(entry)
        if why is not None:
            reruns.append(Rerun(collection.name, entry, collection, (), None, prints, why))
            continue
        pairs = _matched(collection, listed, prints, problems)
        jobs = tuple(_as_job(data, request) for data, request in pairs)
        attempts = {
            companion.job_key(job): _count(data.get("attempts"))
            for job, (data, _) in zip(jobs, pairs, strict=True)
        }
        # Exactly these requests: not matched again by (url, custom_id), which two requests
        # that differ in another field share.
        pending = companion.Matched(tuple(request for _, request in pairs), jobs, ())
        state = retry.Round(pending, (), attempts)
        reruns.append(Rerun(collection.name, entry, collection, jobs, state, prints))
    if problems:
        raise Unmatched(problems)
    return reruns


async def execute(ctx: ApplyContext, rerun: Rerun) -> CollectionOutcome:
    """One companion run for `rerun`, waited for; the collection's outcome as reported."""
    entry, desired = rerun.report, rerun.desired
    assert desired is not None
    retries: tuple[RetryOutcome, ...] = ()
    state = rerun.round
    if state is not None and state.pending.requests:
        outcome, state = await _once(ctx, rerun, desired, state)
        retries = (outcome,)
    return _outcome(entry, desired, retries, state, rerun.prints)


async def _once(
    ctx: ApplyContext, rerun: Rerun, desired: DesiredCollection, state: retry.Round
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
        results = CommandResults(ctx.client, ctx.state, desired, attempts_of, warn=ctx.output.warn)
    parent_run = str((rerun.report.get("run") or {}).get("run_id"))
    book = ledger.load(ctx.state, desired.name, parent_run, kind=ledger.COMMAND_KIND)
    for record in book.attempts:
        if record.attempt != rerun.attempt or record.done:
            continue
        resumed = await retry.resume(ctx, desired, ANY_FAILURE, record, state, results)
        if resumed is not None:
            ledger.save(ctx.state, desired.name, book.with_attempt(replace(record, done=True)))
            return resumed[0], resumed[1]
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
    outcome = _outcome(rerun.report, rerun.desired, (), rerun.round, rerun.prints)
    return dataclasses.replace(outcome, error=error)


def _outcome(
    entry: Mapping[str, Any],
    desired: DesiredCollection,
    retries: tuple[RetryOutcome, ...],
    state: retry.Round | None,
    prints: Prints,
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
            **counts_in(run),
            failed_jobs=tuple(_shown(j) for j in run.get("failed_jobs") or ()),
            credits=sum(r.credits for r in retries),
            reason=reason,
            within_max_failed=within,
            retries=retries,
            final=shown.final_counts(desired, final, prints),
        ),
    )


def _shown(job: Mapping[str, Any]) -> ShownJob:
    """A failed job of the earlier report, as it showed it (schema-checked on reading)."""
    optional = {k: job.get(k) for k in ("custom_id", "status_code", "block_reason", "request")}
    return ShownJob(
        str(job["job_id"]), str(job["url"]), str(job["status"]), str(job["error"]), **optional
    )
