"""`sprunner apply`: lock, load, list, plan, execute, wait, judge, report.

The lock comes first (`sprunner.apply.session.exclusive`): a second apply stops at once with
exit 4, having pinged, loaded, sent and written nothing. Nothing is sent to the API
before every job file has loaded cleanly. The lock is held until the state is closed
and the last file is written. SIGINT and SIGTERM cancel the work in
flight; the state already holds every id and run id (each committed as it arrives), a
partial report is written, and the exit code is 130 / 143. The next apply adopts the runs.
With `--prune`, deletions are asked for first on a terminal (`_consented`).
The handlers cover the command from the lock to the report (`sprunner.apply.interruption`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sprunner.apply.session import exclusive
from sprunner.errors import (
    EXIT_API_UNUSABLE,
    EXIT_CRASH,
    Interrupted,
    LockHeldError,
    ReportError,
    exit_code_for,
)
from sprunner.report.operate import Operations, operated
from sprunner.settings import ApplyOptions, GlobalOptions, Selection

# What an apply needs once it holds the lock is imported then (in the functions below): a
# second apply meets the lock first and exits 4 at once, before importing the job-file
# stage, the API client and the rest (SPEC §9).
if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.apply.interruption import Interruption
    from sprunner.apply.runner import Runner
    from sprunner.apply.session import Target
    from sprunner.apply.track import Details
    from sprunner.jobfile.load import Loaded
    from sprunner.output.ui import Output
    from sprunner.reconcile.plan import Plan
    from sprunner.report.fingerprints import RequestFingerprints
    from sprunner.report.operate import Operation
    from sprunner.report.outcome import ApplyOutcome, CollectionOutcome
    from sprunner.state import StateStore as State


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
    scope: tuple[str, ...]  # the paths of this apply, as the state records files (--prune)


@dataclass
class _Sofar:
    """What a report needs if the apply ends early: filled as the apply goes on."""

    api_url: str
    started_at: float
    apply_id: str
    loaded: Loaded | None = None
    runners: list[Runner] = dataclasses.field(default_factory=list)
    prints: RequestFingerprints | None = None  # once the API key is known

    def outcomes(self, details: Details | None = None) -> tuple[CollectionOutcome, ...]:
        """What the runner did, shown (`sprunner.report.shown`); nothing before it was made."""
        return self.runners[0].outcomes(self.prints, details) if self.runners else ()

    def failed(self, error: BaseException) -> ApplyOutcome:
        """The outcome of an apply ended by `error`: what was done, and why it stopped."""
        from sprunner.report.outcome import ApplyOutcome

        code = exit_code_for(error)
        message = str(error) if code != EXIT_CRASH else "sprunner crashed (a bug)"
        collections = self.outcomes()
        return ApplyOutcome(
            api_url=self.api_url,
            started_at=self.started_at,
            finished_at=time.time(),
            collections=tuple(_cut_short(c, message) for c in collections),
            warnings=tuple(str(w) for w in self.loaded.warnings) if self.loaded else (),
            error=message or type(error).__name__,
            failed_exit_code=code,
            apply_id=self.apply_id,
        )


def _cut_short(collection: CollectionOutcome, error: str) -> CollectionOutcome:
    """A collection the apply's end left undone carries the error that ended it (a quota
    429 on its run start, say); one already finished or deliberately skipped keeps its own."""
    run = collection.run
    undone = run is None or (run.run_id is None and run.status != "skipped")
    if collection.error is not None or collection.action == "delete" or not undone:
        return collection
    return dataclasses.replace(collection, error=error)


def run(
    selection: Selection,
    *,
    options: GlobalOptions,
    output: Output,
    apply_options: ApplyOptions,
) -> int:
    """The apply, whose `--report` and `--junit` are written on every exit but 4 (SPEC §3):
    a monitor never reads the files of an earlier apply as this one's. It runs inside what
    tells its surroundings about it (id, exit code, pings, metrics: `sprunner.report.operate`),
    job-file loading included."""
    # The signal handlers, once installed (after loading), stay until the last file and
    # ping are out: a signal after the outcome is final changes nothing (`_applied`).
    operations = Operations(apply_options.metrics, apply_options.ping)
    with (
        contextlib.ExitStack() as handlers,
        operated(
            output,
            operations,
            api_url=options.api_url,
            exclusive=exclusive(options, local=apply_options.local),
        ) as op,
    ):
        sofar = _Sofar(options.api_url, op.started_at, op.apply_id)
        try:
            op.locked()
            outcome = _applied(selection, options, output, apply_options, sofar, op, handlers)
        except LockHeldError:
            raise  # the files belong to the apply that holds the lock
        except (Exception, KeyboardInterrupt) as error:
            op.outcome = sofar.failed(error)
            _write_files(op.outcome, apply_options, output)
            raise
        op.outcome = outcome
        _write_outputs(outcome, apply_options, output)
        op.exit_code = outcome.exit_code
        if outcome.interrupted_by is not None:
            raise Interrupted(outcome.interrupted_by)
        return op.exit_code


def _applied(
    selection: Selection,
    options: GlobalOptions,
    output: Output,
    apply_options: ApplyOptions,
    sofar: _Sofar,
    op: Operation,
    handlers: contextlib.ExitStack,
) -> ApplyOutcome:
    from sprunner.apply.interruption import Interruption
    from sprunner.apply.session import target
    from sprunner.commands.common import load_jobs
    from sprunner.reconcile.scope import where
    from sprunner.report.fingerprints import RequestFingerprints

    # Loading sends nothing and may take seconds on huge files: until it is done, a signal
    # keeps Python's default and ends the command at once.
    sofar.loaded = loaded = load_jobs(selection, output)
    output.collections = frozenset(c.name for c in loaded.collections)
    if apply_options.run:
        from sprunner.results.delivery import check_destinations

        check_destinations(loaded.collections)  # a missing extra: exit 2, nothing sent
    # Installed until `run` has written the report and sent the last ping (`handlers`):
    # Python's defaults there made a late SIGINT exit 130 beside a report that says 0, and
    # a late SIGTERM end the process with -15.
    interruption = handlers.enter_context(Interruption().installed())
    with (
        target(options, output, local=apply_options.local) as api,
        _state(options, api) as state,
    ):
        sofar.api_url = api.api_url
        sofar.prints = RequestFingerprints.from_api_key(api.api_key)
        scope = tuple(where(path) for path in selection.paths)
        work = _Apply(loaded, api, state, options, apply_options, output, op, scope)
        outcome = asyncio.run(_apply(work, interruption, sofar))
    if interruption.signum is not None and outcome.interrupted_by is None:
        # It came after the work was done: the report says so, as the exit code will.
        outcome = dataclasses.replace(outcome, interrupted_by=interruption.signum)
    # From here the outcome is final: a later signal is only remembered, and the exit code
    # is the one the report (written next) gives.
    if state.lost and not any(c.ok or (c.run and c.run.run_id) for c in outcome.collections):
        # The state database went away before anything was done: the report says so.
        lost = "the state database connection was lost before anything could be done"
        outcome = dataclasses.replace(
            outcome, error=outcome.error or lost, failed_exit_code=EXIT_API_UNUSABLE
        )
    return outcome


def _state(options: GlobalOptions, api: Target) -> contextlib.AbstractContextManager[State]:
    """The state, closed on the way out (`--local` keeps its own). Its lock is held
    already (`exclusive`, taken first); a database state has no whole-state lock: the
    runner takes one per collection (`sprunner.runs.locks`), so that applies on many hosts
    share the work."""
    from sprunner.apply.session import state_of

    return state_of(options, api, lock=False)


async def _apply(work: _Apply, interruption: Interruption, sofar: _Sofar) -> ApplyOutcome:
    from sprunner.apply.failedjobs import job_details
    from sprunner.report.outcome import ApplyOutcome

    main = asyncio.current_task()
    assert main is not None
    runners = sofar.runners  # filled once the plan is made: a partial report reads it
    finals: list[tuple[CollectionOutcome, ...]] = []  # the outcomes with the last runs
    try:
        with interruption.cancelling(
            main, lambda: work.output.warn("interrupted: saving the state and a partial report")
        ):
            async with _client(work) as client:
                await _run(work, client, runners)
                if runners:
                    details = await job_details(client, sofar.outcomes(), work.output)
                    finals.append(sofar.outcomes(details))
    except asyncio.CancelledError:
        if interruption.signum is None:
            raise
    return ApplyOutcome(
        api_url=work.api.api_url,
        started_at=sofar.started_at,
        finished_at=time.time(),
        collections=finals[0] if finals else sofar.outcomes(),
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
    from sprunner.apply.runner import Runner
    from sprunner.apply.session import list_remote
    from sprunner.reconcile.plan import build_plan

    remote = await list_remote(client)
    plan = build_plan(
        work.loaded.collections,
        remote,
        work.state.entries(),
        hasher=work.state.hasher,
        declared=work.loaded.declared,
        prune=work.apply_options.prune,
        scope=work.scope,
    )
    plan = await _consented(work, plan)
    runner = Runner(
        client,
        work.state,
        plan,
        output=work.output,
        apply_id=work.op.apply_id,
        run=work.apply_options.run,
        run_now=work.apply_options.run_now,
        max_credits=work.apply_options.max_credits,
        backoff=work.options.retries.write,
    )
    runners.append(runner)
    with work.output.progress(runner.snapshot, interval=work.apply_options.progress_interval):
        await runner.execute()
    if work.state.lost:
        work.output.error(
            "lost the connection to the state database: nothing new was started after it; "
            "the next apply adopts the runs still in flight"
        )
    work.output.debug(f"{client.calls} API calls, {client.rate_limited} answered 429")


async def _consented(work: _Apply, plan: Plan) -> Plan:
    """On a terminal an apply that would delete asks first (`--yes` skips the question);
    elsewhere `--prune` is the consent (SPEC §4). A no deletes nothing, and says so."""
    doomed = plan.of("delete")
    if not doomed or work.apply_options.yes:
        return plan
    names = ", ".join(f"{item.name} ({item.remote_id})" for item in doomed)
    question = f"--prune would delete {len(doomed)} collections: {names}. Delete them?"
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bool | None] = loop.create_future()

    def ask() -> None:
        said = work.output.confirm(question)
        loop.call_soon_threadsafe(lambda: None if answer.done() else answer.set_result(said))

    # A thread of its own, not the event loop's: a signal at the question still cancels
    # the apply (its handler only schedules that on the loop), and the exit does not wait
    # for a reader still blocked on the terminal.
    threading.Thread(target=ask, name="prune-question", daemon=True).start()
    if await answer is False:
        work.output.warn(f"nothing deleted: the {len(doomed)} deletions were declined")
        return plan.without_deletions()
    return plan


def _write_outputs(outcome: ApplyOutcome, apply_options: ApplyOptions, output: Output) -> None:
    _write_files(outcome, apply_options, output, strict=True)
    output.apply_result(outcome)


def _write_files(
    outcome: ApplyOutcome, apply_options: ApplyOptions, output: Output, *, strict: bool = False
) -> None:
    """`--report` and `--junit`. When the apply already failed (`strict` False), a file that
    cannot be written is said on stderr and the apply's own error stays the one raised."""
    from sprunner.report import document as report
    from sprunner.report.junit import write_junit

    try:
        if apply_options.report is not None:
            report.write_report(outcome, apply_options.report, output.redactor)
        if apply_options.junit is not None:
            write_junit(outcome, apply_options.junit, redactor=output.redactor)
    except ReportError as error:
        if strict:
            raise
        output.error(str(error))
