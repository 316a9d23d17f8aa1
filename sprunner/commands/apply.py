"""`sprunner apply`: load, lock, list, plan, execute, wait, report.

Nothing is sent to the API before every job file has loaded cleanly. The lock is held from
before the first call until the state is compacted. SIGINT and SIGTERM cancel the work in
flight; the state already holds every id and run id (it is journaled as they arrive), a
partial report is written, and the exit code is 130 / 143. The next apply adopts the runs.
The handlers cover the command from the lock to the report (`sprunner.interruption`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sprunner import report
from sprunner.api.errors import ApiUnusableError
from sprunner.commands.common import load_jobs
from sprunner.errors import EXIT_FAILED, EXIT_OK, Interrupted
from sprunner.failedjobs import with_job_details
from sprunner.interruption import Interruption
from sprunner.jobfile.load import Loaded
from sprunner.lastrun import with_last_runs
from sprunner.operate import Operation, operated
from sprunner.outcome import ApplyOutcome, CollectionOutcome
from sprunner.session import Target, list_remote, target
from sprunner.settings import ApplyOptions, GlobalOptions, Selection
from sprunner.state import StateStore as State
from sprunner.state import opened
from sprunner.ui import Output

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.runner import Runner


@dataclass(frozen=True)
class _Apply:
    """What one apply works with, once the target is known."""

    loaded: Loaded
    api: Target
    state: State
    options: GlobalOptions
    apply_options: ApplyOptions
    output: Output
    op: Operation


def run(
    selection: Selection,
    *,
    options: GlobalOptions,
    output: Output,
    apply_options: ApplyOptions,
) -> int:
    """The apply, inside what tells its surroundings about it (id, exit code, pings,
    metrics: `sprunner.operate`), job-file loading included."""
    with operated(output, apply_options, api_url=options.api_url) as op:
        op.exit_code = _applied(selection, options, output, apply_options, op)
        return op.exit_code


def _applied(
    selection: Selection,
    options: GlobalOptions,
    output: Output,
    apply_options: ApplyOptions,
    op: Operation,
) -> int:
    # Loading sends nothing and may take seconds on huge files: until it is done, a signal
    # keeps Python's default and ends the command at once.
    loaded = load_jobs(selection, output)
    output.collections = frozenset(c.name for c in loaded.collections)
    with Interruption().installed() as interruption:
        with (
            target(options, output, local=apply_options.local) as api,
            _state(options, api) as state,
        ):
            work = _Apply(loaded, api, state, options, apply_options, output, op)
            outcome = asyncio.run(_apply(work, interruption))
        if interruption.signum is not None and outcome.interrupted_by is None:
            # It came after the work was done: the report says so, as the exit code will.
            outcome = dataclasses.replace(outcome, interrupted_by=interruption.signum)
        op.outcome = outcome
        _write_outputs(outcome, apply_options, output)
    if interruption.signum is not None:
        raise Interrupted(interruption.signum)
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _state(options: GlobalOptions, api: Target) -> contextlib.AbstractContextManager[State]:
    """The state under its lock, compacted on the way out (`--local` keeps its own)."""
    return opened(
        state_dir=api.state_dir,
        state_url=None if api.local else options.state_url,
        api_url=api.api_url,
        key=api.api_key,
    )


async def _apply(work: _Apply, interruption: Interruption) -> ApplyOutcome:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def cancel() -> None:
        work.output.warn("interrupted: saving the state and a partial report")
        main.cancel()

    interruption.on_first = lambda: loop.call_soon_threadsafe(cancel)
    if interruption.signum is not None:  # it came while locking or starting up
        cancel()

    started_at = work.op.started_at
    runners: list[Runner] = []  # filled once the plan is made: a partial report reads it
    finals: list[tuple[CollectionOutcome, ...]] = []  # the outcomes with the last runs
    try:
        async with _client(work) as client:
            await _run(work, client, runners)
            if runners:
                done = await with_last_runs(client, runners[0].outcomes(), work.output)
                finals.append(await with_job_details(client, done, work.output))
    except asyncio.CancelledError:
        if interruption.signum is None:
            raise
    except ApiUnusableError:
        if runners and work.apply_options.report is not None:
            partial = ApplyOutcome(
                work.api.api_url,
                started_at,
                time.time(),
                runners[0].outcomes(),
                apply_id=work.op.apply_id,
            )
            report.write_report(partial, work.apply_options.report, work.output.redactor)
        raise
    finally:
        interruption.on_first = None
    return ApplyOutcome(
        api_url=work.api.api_url,
        started_at=started_at,
        finished_at=time.time(),
        collections=finals[0] if finals else runners[0].outcomes() if runners else (),
        warnings=tuple(str(w) for w in work.loaded.warnings),
        interrupted_by=interruption.signum,
        apply_id=work.op.apply_id,
    )


def _client(work: _Apply) -> ApiClient:
    from sprunner.api.client import ApiClient
    from sprunner.api.limiter import RateLimiter

    return ApiClient(
        base_url=work.api.api_url,
        api_key=work.api.api_key,
        limiter=RateLimiter(max_rps=work.apply_options.max_rps),
        parallel=work.apply_options.parallel,
        backoff=work.options.retries.api,
        on_call=work.op.on_call,
    )


async def _run(work: _Apply, client: ApiClient, runners: list[Runner]) -> None:
    from sprunner.reconcile.plan import build_plan
    from sprunner.runner import Runner

    remote = await list_remote(client)
    plan = build_plan(
        work.loaded.collections,
        remote,
        work.state.entries(),
        hasher=work.state.hasher,
        declared=work.loaded.declared,
        prune=work.apply_options.prune,
    )
    runner = Runner(
        client,
        work.state,
        plan,
        output=work.output,
        apply_id=work.op.apply_id,
        run=work.apply_options.run,
        max_credits=work.apply_options.max_credits,
        backoff=work.options.retries.write,
    )
    runners.append(runner)
    with work.output.progress(runner.snapshot, interval=work.apply_options.progress_interval):
        await runner.execute()
    work.output.debug(f"{client.calls} API calls, {client.rate_limited} answered 429")


def _write_outputs(outcome: ApplyOutcome, apply_options: ApplyOptions, output: Output) -> None:
    if apply_options.report is not None:
        report.write_report(outcome, apply_options.report, output.redactor)
    if apply_options.junit is not None:
        from sprunner.junit import write_junit

        write_junit(outcome, apply_options.junit, redactor=output.redactor)
    output.apply_result(outcome)
