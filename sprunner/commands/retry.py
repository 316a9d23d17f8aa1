"""`sprunner retry REPORT.json`: re-run the failed jobs an earlier report lists (SPEC §8).

The report is read like any input (`sprunner.report.readback`: a regular file, capped, schema
checked) and names each collection's job file; those files are loaded (nothing is sent
before they load cleanly) to find the requests of the failed jobs, by the keyed
fingerprints the report gives them (`retry/rerun.py`): a report that cannot be matched
exactly is refused, exit 2, before anything is sent. Each collection with
something to re-run gets one run of its companion `<name>.retry`, all concurrently, under
the state's lock and `--max-credits`; the runs are waited for and a new report is
written (`--report`). `--dry-run` sends nothing: it lists what would run and its credits.

Locks: the state directory's OS lock for the whole command; on a shared PostgreSQL state,
the whole-state lock (one retry at a time) and each collection's own lock, as `apply`
takes them (`StateStore.try_lock`): a retry and an apply never work on one collection at
once, while the other collections go on.

It is operated like `apply` (SPEC §9, `sprunner.report.operate`): the lock first (exit 4 sends and
writes nothing), an id on every line, `--metrics` and `--ping`. A companion run that
retries the latest recorded run of a collection updates that collection's verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sprunner.apply.interruption import Interruption
from sprunner.apply.session import Target, exclusive, read_api_key, state_of, target
from sprunner.commands.common import load_jobs
from sprunner.errors import EXIT_OK, StateError, UsageError, exit_code_for
from sprunner.output.ui import Output
from sprunner.report import document as reports
from sprunner.report.operate import Operation, Operations, operated
from sprunner.report.outcome import ApplyOutcome, CollectionOutcome
from sprunner.report.readback import job_files, read_report
from sprunner.settings import DEFAULT_PARALLEL, GlobalOptions, Selection
from sprunner.state import StateStore

if TYPE_CHECKING:
    from sprunner.retry.rerun import Rerun


@dataclass(frozen=True)
class RetryOptions:
    report: Path | None = None  # the new report
    junit: Path | None = None
    dry_run: bool = False
    max_credits: int | None = None
    parallel: int = DEFAULT_PARALLEL
    metrics: Path | None = None  # --metrics FILE, as for apply
    ping: str | None = None  # --ping URL, as for apply


def run(
    report_path: Path,
    *,
    selection: Selection,
    options: GlobalOptions,
    output: Output,
    retry_options: RetryOptions,
) -> int:
    if retry_options.dry_run:  # a preview: no lock, no ping, no metrics
        _prepared(report_path, selection, options, output, dry_run=True)
        return EXIT_OK
    operations = Operations(retry_options.metrics, retry_options.ping, command="retry")
    with operated(
        output,
        operations,
        api_url=options.api_url,
        exclusive=exclusive(options, whole=True),
    ) as op:
        op.locked()
        document, reruns = _prepared(report_path, selection, options, output, dry_run=False)
        try:
            outcome = _retried(document, reruns, options, output, retry_options, op)
        except (Exception, KeyboardInterrupt) as error:
            op.outcome = ApplyOutcome(
                options.api_url,
                op.started_at,
                time.time(),
                error=str(error) or type(error).__name__,
                failed_exit_code=exit_code_for(error),
                apply_id=op.apply_id,
            )
            raise
        op.outcome = outcome
        op.exit_code = outcome.exit_code
        return op.exit_code


def _prepared(
    report_path: Path,
    selection: Selection,
    options: GlobalOptions,
    output: Output,
    *,
    dry_run: bool,
) -> tuple[Mapping[str, Any], list[Rerun]]:
    from sprunner.report.fingerprints import RequestFingerprints
    from sprunner.retry import rerun

    document = read_report(report_path)
    files = job_files(document, report_path)
    loaded = load_jobs(
        Selection(paths=files, select=selection.select, max_requests=selection.max_requests),
        output,
    )
    # The failed jobs are matched by their requests' keyed fingerprints: the key first.
    prints = RequestFingerprints.from_api_key(read_api_key(options, output))
    try:
        reruns = rerun.plan(document, loaded.collections, prints)
    except rerun.Unmatched as error:
        raise UsageError(f"{report_path}: {error}") from None
    _tell(reruns, output, dry_run=dry_run)
    return document, reruns


def _retried(
    document: Mapping[str, Any],
    reruns: list[Rerun],
    options: GlobalOptions,
    output: Output,
    retry_options: RetryOptions,
    op: Operation,
) -> ApplyOutcome:
    started_at = op.started_at
    # As for apply (sprunner/apply/interruption.py): a signal from the lock to the report stops
    # the waiting, and the report says so; the next `sprunner retry` adopts the runs.
    with Interruption().installed() as interruption:
        with target(options, output, local=False) as api:
            if document.get("api_url") not in (None, api.api_url):
                output.warn(
                    f"the report is of {document['api_url']}; retrying against {api.api_url}"
                )
            # The lock is held since the start (`exclusive`).
            with state_of(options, api, lock=False) as state:
                work = _Work(reruns, api, state, options, output, retry_options, op)
                outcomes = asyncio.run(_interruptible(work, interruption))
        outcome = ApplyOutcome(
            api.api_url,
            started_at,
            time.time(),
            outcomes,
            interrupted_by=interruption.signum,
            apply_id=op.apply_id,
        )
        if retry_options.report is not None:
            reports.write_report(outcome, retry_options.report, output.redactor)
        if retry_options.junit is not None:
            from sprunner.report.junit import write_junit

            write_junit(outcome, retry_options.junit, redactor=output.redactor)
        output.apply_result(outcome)
    return outcome


@dataclass(frozen=True)
class _Work:
    reruns: Sequence[Rerun]
    api: Target
    state: StateStore
    options: GlobalOptions
    output: Output
    retry_options: RetryOptions
    op: Operation


async def _interruptible(work: _Work, interruption: Interruption) -> tuple[CollectionOutcome, ...]:
    """The companion runs, stopped by the first signal: then each collection not done is
    reported as interrupted, its run left recorded for the next `sprunner retry`."""
    from sprunner.retry import rerun

    done: dict[str, CollectionOutcome] = {}
    main = asyncio.current_task()
    assert main is not None
    try:
        with interruption.cancelling(main):
            return await _execute(work, done)
    except asyncio.CancelledError:
        if interruption.signum is None:
            raise
        note = "interrupted: the next `sprunner retry` of this report adopts its run"
        return tuple(done.get(item.name) or rerun.failed(item, note) for item in work.reruns)


def _tell(reruns: Sequence[Rerun], output: Output, *, dry_run: bool) -> None:
    """One line per collection: what is re-run (and its credits), or why nothing is."""
    verb = "would re-run" if dry_run else "re-runs"
    for item in reruns:
        if item.round is None or not item.round.pending.requests:
            output.out(f"{item.name}: nothing to retry: {item.note}")
            continue
        count = len(item.round.pending.requests)
        output.out(
            f"{item.name}: {verb} {count} failed requests in {item.name}.retry "
            f"({item.credits} credits)"
        )
    total = sum(item.credits for item in reruns)
    runs = sum(1 for item in reruns if item.round is not None and item.round.pending.requests)
    output.out(f"Retry: {runs} companion runs, {total} credits at most.")


async def _execute(
    work: _Work, done: dict[str, CollectionOutcome]
) -> tuple[CollectionOutcome, ...]:
    """Each collection's companion run, concurrently; each outcome goes to `done` as soon
    as it is known (what a partial report after a signal shows)."""
    from sprunner.api.client import ApiClient
    from sprunner.api.errors import ApiError, ApiUnusableError
    from sprunner.apply.context import ApplyContext
    from sprunner.retry import rerun
    from sprunner.runs.ledger import CreditBrake

    api, state, options, output = work.api, work.state, work.options, work.output
    retry_options = work.retry_options
    async with ApiClient(
        base_url=api.api_url,
        api_key=api.api_key,
        parallel=retry_options.parallel,
        backoff=options.retries.api,
        on_call=work.op.on_call,
    ) as client:
        brake = CreditBrake(retry_options.max_credits, 0)
        context = ApplyContext(
            client, state, work.op.apply_id, output, brake, backoff=options.retries.write
        )

        async def one(item: Rerun) -> CollectionOutcome:
            # One collection's failure does not stop the others (SPEC section 4).
            try:
                if not state.try_lock(item.name, apply_id=work.op.apply_id):
                    holder = state.holder(item.name) or "another apply"
                    raise StateError(f"not retried: {holder} is working on it; retry once it ends")
                outcome = await rerun.execute(context, item)
            except ApiUnusableError:
                raise
            except (ApiError, StateError) as error:
                output.error(f"{item.name}: {error}", event="collection_error")
                outcome = rerun.failed(item, str(error))
            else:
                outcome = rerun.judged(state, outcome, now=time.time())
            finally:
                with contextlib.suppress(StateError):
                    state.unlock(item.name)
            done[item.name] = outcome
            return outcome

        return tuple(await asyncio.gather(*(one(item) for item in work.reruns)))
