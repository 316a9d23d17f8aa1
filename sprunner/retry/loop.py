"""Retrying failed jobs (SPEC §8): after a run completes, re-run what still fails in the
companion `<name>.retry`, up to `run.retry.attempts` times, and judge the final outcome.

The loop, for one parent run:
1. the parent's failed and timed-out jobs (jobs listing): those whose status is in `on`
   and that match a rendered request by `(url, custom_id)` are retried; the others stay
   as they are (a job matching no request is reported, never retried);
2. per attempt: wait `delay`, check `--max-credits` (`CreditBrake`), PUT the companion
   with exactly the still-failing requests, start its run (`start.start`: never twice),
   poll it, and keep only what still fails for the next attempt;
3. the final outcome is per request: succeeded in any run = success;
4. with `results:`, each retry run is drained while it runs and the one results file of
   the parent run is published last, one line per request (`retryresults.py`).

Never twice: the parent's run stays recorded in flight (`inflight`) until its retries
are over, so an apply killed meanwhile is adopted by the next apply (`start.adopt_ours`)
like any run; the ledger (`retryledger.py`) then says which retries were begun, and the
companion's entry holds the retry run in flight, which is adopted rather than started
again. A ledger marked `done` for a run means its failed jobs were retried: never again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sprunner.api.models import Job, Run
from sprunner.apply.context import ApplyContext
from sprunner.jobfile.model import DesiredCollection, RetryPolicy, request_credits
from sprunner.report.outcome import FinalCounts, RetryOutcome
from sprunner.results.delivery import max_poll_delay
from sprunner.retry import companion, failing, ledger
from sprunner.retry.companion import Matched
from sprunner.retry.results import Hook, RetryResults, RunResults
from sprunner.runs import poller, start
from sprunner.runs.counts import counts_of as run_counts
from sprunner.runs.credits import charged, charged_for, per_request
from sprunner.state import StateStore as State
from sprunner.state import lifecycle
from sprunner.util.killpoints import reached


@dataclass(frozen=True)
class Retried:
    """The retry phase of one collection: each retry run and the final counts."""

    retries: tuple[RetryOutcome, ...]
    final: FinalCounts
    credits: int = 0  # charged by the retry runs (`sprunner.runs.credits`)
    # Runs each request that ever failed took, by (url, custom_id): the `attempts` column
    # of the report's still-failing jobs; absent keys took one run.
    attempts: Mapping[tuple[str, str | None], int] = field(default_factory=dict)
    results: Mapping[str, Any] | None = None  # the final results file, for the report
    error: str | None = None  # the results could not be delivered


@dataclass(frozen=True)
class Round:
    """Where the loop stands: what is retried next, and what stays failed for good."""

    pending: Matched
    settled: tuple[Job, ...]  # not retried: status not in `on`, or matching no request
    attempts: Mapping[tuple[str, str | None], int]  # runs each still-failing request took
    unmatched: int = 0  # failed jobs of the first run that matched no request


async def retry(ctx: ApplyContext, desired: DesiredCollection, first: Run) -> Retried:
    """Retry `first`'s failed jobs per `desired.run.retry`; `first` as it was when there
    is no retry phase (retrying off, the run not completed, or nothing failed)."""
    policy, name = desired.run.retry, desired.name
    if not follows(desired, first):
        return Retried((), counts_of(first))
    reached("retry.phase")  # the first run over, nothing of its retries recorded yet
    book = ledger.load(ctx.state, name, first.run_id)
    if not book.done:
        # Before the first await: nothing separates the end of the wait from this mark.
        _hold(ctx.state, name, first)
    bad = await failing.jobs(ctx.client, first, name=name)
    state = split(desired.requests, bad, policy, attempts={})
    state = replace(state, unmatched=len(state.pending.unmatched))
    for job in state.pending.unmatched:
        line = f"{name}: failed job {job.job_id} ({job.url}) matches no request: not retried"
        ctx.output.info(line)
    retries: list[RetryOutcome] = []
    attempt = 1
    results = RetryResults.open(ctx.client, ctx.state, desired, first, warn=ctx.output.warn)
    for record in book.attempts:
        resumed = await resume(ctx, desired, policy, record, state, results, book=book)
        if resumed is None:  # begun, never started: it is started below as new
            break
        outcome, state, noted = resumed
        book = noted or book
        retries.append(outcome)
        attempt = record.attempt + 1
        if outcome.status != "completed":
            book = replace(book, done=True)
            break
    while not book.done and state.pending.requests and attempt <= policy.attempts:
        outcome, state, noted = await attempt_once(
            ctx, desired, policy, book, attempt, state, results
        )
        assert noted is not None
        book = noted
        retries.append(outcome)
        if outcome.status != "completed":
            break
        attempt += 1
    shown = None
    if results is not None:
        # Before the ledger is done and the parent leaves the flight: a kill before the
        # final file is in place is adopted, and folds again.
        completed = [(r.attempt, r.run_id) for r in retries if r.status == "completed"]
        shown = await results.publish([(a, run_id) for a, run_id in completed if run_id])
    ledger.save(ctx.state, name, replace(book, done=True))
    start.finish(ctx.state, name=name)
    counts = failing.final(
        first.total_requests,
        state.settled,
        state.pending,
        state.attempts,
        unmatched=state.unmatched,
    )
    credits = sum(r.credits for r in retries)
    error = None if results is None else results.error
    return Retried(tuple(retries), counts, credits, dict(state.attempts), shown, error)


def follows(desired: DesiredCollection, run: Run) -> bool:
    """Whether a retry phase follows `run`: retrying on, the run completed, jobs failed."""
    bad = run.failed_requests + run.timeout_requests
    return desired.run.retry.attempts > 0 and run.done and bad > 0


def counts_of(run: Run) -> FinalCounts:
    """A run's own counts as the final ones (no job was retried)."""
    return FinalCounts(**run_counts(run))


def _hold(state: State, name: str, first: Run) -> None:
    """Keep the parent's run in flight until its retries are over: an apply killed
    meanwhile adopts it on the next apply, and the ledger resumes the retries."""
    lifecycle.run_held(state, name, first.run_id)


def split(
    requests: Sequence[Mapping[str, Any]],
    bad: Sequence[Job],
    policy: RetryPolicy,
    *,
    attempts: Mapping[tuple[str, str | None], int],
    settled: tuple[Job, ...] = (),
) -> Round:
    """Sort failed jobs: retried next (status in `on`, matching a request) or settled. A
    request settled by an earlier run and failing again in `bad` counts once, as `bad`
    says: a retry run adopted from an earlier apply may re-run a request that today's
    file no longer matches, so that it was settled already."""
    wanted = [job for job in bad if job.status in policy.on]
    kept = tuple(job for job in bad if job.status not in policy.on)
    matched = companion.match(requests, wanted)
    counted = {companion.job_key(j): attempts.get(companion.job_key(j), 1) for j in bad}
    earlier = tuple(job for job in settled if companion.job_key(job) not in counted)
    return Round(matched, earlier + kept + matched.unmatched, {**counted, **attempts})


async def attempt_once(
    ctx: ApplyContext,
    desired: DesiredCollection,
    policy: RetryPolicy,
    book: ledger.Ledger | None,
    attempt: int,
    state: Round,
    results: RunResults | None = None,
) -> tuple[RetryOutcome, Round, ledger.Ledger | None]:
    """One new retry run: delay, credit brake, PUT, start, wait. With a `book`, each step
    is recorded in the parent's ledger first (an apply); without, nothing is (`retry`)."""
    requests = state.pending.requests
    cost = sum(request_credits(r) for r in requests)
    if policy.delay > 0:
        ctx.output.info(f"{desired.name}: retry {attempt} in {policy.delay:g}s")
        await asyncio.sleep(policy.delay)
    refused = await ctx.brake.take(cost)
    if refused is not None:
        ctx.output.info(f"{desired.name}: retry {attempt} {refused}", event="retry_refused")
        outcome = RetryOutcome(attempt, "refused", requests=len(requests), reason=refused)
        return outcome, state, None if book is None else replace(book, done=True)
    record = ledger.Attempt(attempt, requests=len(requests), credits=cost)
    await _settle_stray(ctx, desired)
    book = _note(ctx, desired.name, book, record)
    target = companion.companion_of(desired, requests)
    collection_id, fresh = await companion.put(
        ctx.client,
        ctx.state,
        target,
        parent=desired.name,
        apply_id=ctx.apply_id,
        backoff=ctx.backoff,
    )
    book = _note(ctx, desired.name, book, record := replace(record, collection_id=collection_id))
    started = await start.start(
        ctx.client,
        ctx.state,
        name=target.name,
        collection_id=collection_id,
        fresh=fresh,
        backoff=ctx.backoff,
    )
    book = _note(ctx, desired.name, book, record := replace(record, run_id=started.run.run_id))
    ctx.output.info(
        f"{desired.name}: retry {attempt}: run {started.run.run_id} of {target.name} "
        f"started ({len(requests)} requests)",
        event="retry_started",
        collection=desired.name,
        run_id=started.run.run_id,
        attempt=attempt,
        total_requests=len(requests),
        cost=cost,
    )
    outcome, state = await _finish(ctx, desired, policy, record, started, state, results=results)
    book = _note(ctx, desired.name, book, replace(record, done=True))
    return outcome, state, book


async def _settle_stray(ctx: ApplyContext, desired: DesiredCollection) -> None:
    """A companion run left in flight by another retry (a killed `sprunner retry`, whose
    own ledger this is not) is seen to its end before the companion is PUT again: never
    lost to a new start's record, never overlapped by a run of the same requests."""
    name = companion.companion_name(desired.name)
    entry = ctx.state.get(name)
    if entry is None or not entry.id or entry.inflight is None:
        return
    started = await start.adopt_ours(ctx.client, ctx.state, name=name, collection_id=entry.id)
    if started is None:
        return
    line = f"{desired.name}: waiting for run {started.run.run_id} of {name}, left by a retry"
    ctx.output.info(line)
    await _wait(ctx, desired, started, None)
    start.finish(ctx.state, name=name)


async def _wait(
    ctx: ApplyContext, desired: DesiredCollection, started: start.Started, hook: Hook | None
) -> poller.Waited:
    """Poll a companion run to its end (or `timeout`), its results drained by `hook`."""
    loop = asyncio.get_running_loop()
    return await poller.wait_for_run(
        ctx.client,
        started.run,
        name=companion.companion_name(desired.name),
        poll_interval=desired.run.poll_interval,
        deadline=loop.time() + desired.run.timeout,
        started=loop.time() - max(0.0, ctx.clock() - started.started_at),
        on_poll=None if hook is None else hook.on_poll,
        max_delay=None if hook is None else max_poll_delay(desired.run),
    )


def _note(
    ctx: ApplyContext, name: str, book: ledger.Ledger | None, record: ledger.Attempt
) -> ledger.Ledger | None:
    """`record` in the ledger, durable before the step it announces is taken."""
    if book is None:
        return None
    book = book.with_attempt(record)
    ledger.save(ctx.state, name, book)
    return book


async def resume(
    ctx: ApplyContext,
    desired: DesiredCollection,
    policy: RetryPolicy,
    record: ledger.Attempt,
    state: Round,
    results: RunResults | None,
    *,
    book: ledger.Ledger | None = None,
) -> tuple[RetryOutcome, Round, ledger.Ledger | None] | None:
    """A retry an earlier apply began: adopt its run, never start it again. None when its
    start was never sent (nothing ran): the caller starts it as a new retry. With the
    ledger (`book`), the adopted run's id is noted in it before the wait (a start whose
    id was never recorded: the fold of the results must know every retry run), and the
    attempt done after it; the ledger as noted is returned."""
    name = companion.companion_name(desired.name)
    entry = ctx.state.get(name)
    collection_id = record.collection_id or (entry.id if entry and entry.id else None)
    if collection_id is None:
        return None
    started, flying = None, entry.inflight if entry else None
    # The companion's run in flight is this retry's unless the ledger names another run for
    # it: a kill before a later retry's end leaves that one in flight (adopted as its own).
    if record.run_id is None or (flying and flying.run_id == record.run_id):
        started = await start.adopt_ours(
            ctx.client, ctx.state, name=name, collection_id=collection_id
        )
    if started is None and record.run_id is not None:
        run = await ctx.client.get_run(collection_id, record.run_id, name=name)
        started = start.Started(run, adopted=True, started_at=ctx.clock())
    if started is None:
        return None
    ctx.output.info(
        f"{desired.name}: retry {record.attempt}: adopted run {started.run.run_id}",
        event="retry_adopted",
        run_id=started.run.run_id,
    )
    if record.run_id != started.run.run_id:
        book = _note(ctx, desired.name, book, record := replace(record, run_id=started.run.run_id))
    outcome, state = await _finish(ctx, desired, policy, record, started, state, results=results)
    if not record.done:
        book = _note(ctx, desired.name, book, replace(record, done=True))
    return outcome, state, book


async def _finish(
    ctx: ApplyContext,
    desired: DesiredCollection,
    policy: RetryPolicy,
    record: ledger.Attempt,
    started: start.Started,
    state: Round,
    *,
    results: RunResults | None = None,
) -> tuple[RetryOutcome, Round]:
    """Wait for a retry run (its results drained meanwhile) and carry what still fails
    over to the next round. Its credits are the ones charged (`sprunner.runs.credits`): the cost
    of the requests it re-ran that succeeded."""
    name = companion.companion_name(desired.name)
    hook = None
    if results is not None:
        hook = await results.begin(record.attempt, started.run, started.started_at)
    shown = None
    try:
        waited = await _wait(ctx, desired, started, hook)
        if hook is not None and not waited.timed_out:
            shown = await hook.done(waited.run)
    finally:
        if hook is not None:
            hook.close()
    start.finish(ctx.state, name=name)
    run, requests = waited.run, state.pending.requests
    bad = [] if waited.timed_out else await failing.jobs(ctx.client, run, name=name)
    outcome = _outcome(desired, record, started, waited, requests, bad, shown)
    ctx.output.info(
        f"{desired.name}: retry {record.attempt}: run {run.run_id} {outcome.status}: "
        f"{run.success_requests}/{run.total_requests} ok",
        event="retry_finished",
        collection=desired.name,
        run_id=run.run_id,
        attempt=record.attempt,
        success_requests=run.success_requests,
        total_requests=run.total_requests,
        credits=outcome.credits,
    )
    if waited.timed_out:
        return outcome, state
    keys = {companion.job_key(j) for j in state.pending.jobs}
    tried = {key: state.attempts.get(key, 1) + 1 for key in keys}
    attempts = {**state.attempts, **tried}
    nxt = split(state.pending.requests, bad, policy, attempts=attempts, settled=state.settled)
    return outcome, replace(nxt, unmatched=state.unmatched)


def _outcome(
    desired: DesiredCollection,
    record: ledger.Attempt,
    started: start.Started,
    waited: poller.Waited,
    requests: Sequence[Mapping[str, Any]],
    bad: Sequence[Job],
    shown: Mapping[str, Any] | None,
) -> RetryOutcome:
    """A retry run as the report shows it; charged the cost of the requests it re-ran
    that succeeded (an estimate when it timed out: which ones is not known)."""
    run = waited.run
    if waited.timed_out:
        credits = charged(run.success_requests, per_request(requests))
    else:
        credits = charged_for(requests, (companion.job_key(j) for j in bad))
    return RetryOutcome(
        record.attempt,
        "timed_out" if waited.timed_out else "completed",
        run_id=run.run_id,
        collection_id=run.collection_id,
        requests=run.total_requests,
        success_requests=run.success_requests,
        failed_requests=run.failed_requests,
        timeout_requests=run.timeout_requests,
        credits=credits,
        adopted=started.adopted,
        reason=f"still in progress after {desired.run.timeout:g}s" if waited.timed_out else None,
        results=shown,
    )
