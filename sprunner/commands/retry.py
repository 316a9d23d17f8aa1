"""`sprunner retry REPORT.json`: re-run the failed jobs an earlier report lists (SPEC §8).

The report is read like any input (`sprunner.reportfile`: a regular file, capped, schema
checked) and names each collection's job file; those files are loaded (nothing is sent
before they load cleanly) to find the requests of the failed jobs, by the keyed
fingerprints the report gives them (`runs/rerun.py`): a report that cannot be matched
exactly is refused, exit 2, before anything is sent. Each collection with
something to re-run gets one run of its companion `<name>.retry`, all concurrently, under
the state's lock and `--max-credits`; the runs are waited for and a new report is
written (`--report`). `--dry-run` sends nothing: it lists what would run and its credits.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sprunner import report as reports
from sprunner.commands.common import load_jobs
from sprunner.errors import EXIT_OK, UsageError
from sprunner.interruption import Interruption
from sprunner.outcome import ApplyOutcome, CollectionOutcome
from sprunner.reportfile import job_files, read_report
from sprunner.session import Target, read_api_key, target
from sprunner.settings import DEFAULT_PARALLEL, GlobalOptions, Selection
from sprunner.state import StateStore, opened
from sprunner.ui import Output

if TYPE_CHECKING:
    from sprunner.runs.rerun import Rerun


@dataclass(frozen=True)
class RetryOptions:
    report: Path | None = None  # the new report
    junit: Path | None = None
    dry_run: bool = False
    max_credits: int | None = None
    parallel: int = DEFAULT_PARALLEL


def run(
    report_path: Path,
    *,
    selection: Selection,
    options: GlobalOptions,
    output: Output,
    retry_options: RetryOptions,
) -> int:
    from sprunner.fingerprints import RequestFingerprints
    from sprunner.runs import rerun

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
    _tell(reruns, output, dry_run=retry_options.dry_run)
    if retry_options.dry_run:
        return EXIT_OK
    started_at = time.time()
    # As for apply (sprunner/interruption.py): a signal from the lock to the report stops
    # the waiting, and the report says so; the next `sprunner retry` adopts the runs.
    with Interruption().installed() as interruption:
        with target(options, output, local=False) as api:
            if document.get("api_url") not in (None, api.api_url):
                output.warn(
                    f"the report is of {document['api_url']}; retrying against {api.api_url}"
                )
            with opened(
                state_dir=api.state_dir,
                state_url=options.state_url,
                api_url=api.api_url,
                key=api.api_key,
            ) as state:
                work = _Work(reruns, api, state, options, output, retry_options)
                outcomes = asyncio.run(_interruptible(work, interruption))
        outcome = ApplyOutcome(
            api.api_url, started_at, time.time(), outcomes, interrupted_by=interruption.signum
        )
        if retry_options.report is not None:
            reports.write_report(outcome, retry_options.report, output.redactor)
        if retry_options.junit is not None:
            from sprunner.junit import write_junit

            write_junit(outcome, retry_options.junit, redactor=output.redactor)
        output.apply_result(outcome)
    return outcome.exit_code


@dataclass(frozen=True)
class _Work:
    reruns: Sequence[Rerun]
    api: Target
    state: StateStore
    options: GlobalOptions
    output: Output
    retry_options: RetryOptions


async def _interruptible(work: _Work, interruption: Interruption) -> tuple[CollectionOutcome, ...]:
    """The companion runs, stopped by the first signal: then each collection not done is
    reported as interrupted, its run left recorded for the next `sprunner retry`."""
    from sprunner.runs import rerun

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
    from sprunner.runs import rerun, retry

    api, state, options, output = work.api, work.state, work.options, work.output
    retry_options = work.retry_options
    async with ApiClient(
        base_url=api.api_url,
        api_key=api.api_key,
        parallel=retry_options.parallel,
        backoff=options.retries.api,
    ) as client:
        context = retry.Context(
            client,
            state,
            uuid.uuid4().hex,
            retry.CreditBrake(retry_options.max_credits, 0),
            options.retries.write,
            log=output.info,
            warn=output.warn,
        )

        async def one(item: Rerun) -> CollectionOutcome:
            # One collection's failure does not stop the others (SPEC section 4).
            try:
                outcome = await rerun.execute(context, item)
            except ApiUnusableError:
                raise
            except ApiError as error:
                output.error(f"{item.name}: {error}")
                outcome = rerun.failed(item, str(error))
            done[item.name] = outcome
            return outcome

        return tuple(await asyncio.gather(*(one(item) for item in work.reruns)))
