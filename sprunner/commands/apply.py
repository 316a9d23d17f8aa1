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
import uuid

from sprunner import report, ui
from sprunner.api.errors import ApiUnusableError
from sprunner.errors import EXIT_FAILED, EXIT_OK, Interrupted
from sprunner.interruption import Interruption
from sprunner.jobfile.load import Loaded, load
from sprunner.outcome import ApplyOutcome
from sprunner.session import Target, list_remote, target
from sprunner.settings import ApplyOptions, GlobalOptions, Selection
from sprunner.state import StateStore as State
from sprunner.state import opened


def run(selection: Selection, *, options: GlobalOptions, apply_options: ApplyOptions) -> int:
    # Loading sends nothing and may take seconds on huge files: until it is done, a signal
    # keeps Python's default and ends the command at once.
    loaded = load(selection)
    for warning in loaded.warnings:
        ui.warn(str(warning))
    for collection in loaded.collections:
        ui.add_secrets(collection.secrets)
    with Interruption().installed() as interruption:
        with target(options, local=apply_options.local) as api, _state(options, api) as state:
            outcome = asyncio.run(_apply(loaded, api, state, apply_options, interruption))
        if interruption.signum is not None and outcome.interrupted_by is None:
            # It came after the work was done: the report says so, as the exit code will.
            outcome = dataclasses.replace(outcome, interrupted_by=interruption.signum)
        _write_outputs(outcome, apply_options)
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


async def _apply(
    loaded: Loaded,
    api: Target,
    state: State,
    apply_options: ApplyOptions,
    interruption: Interruption,
) -> ApplyOutcome:
    from sprunner.api.client import ApiClient
    from sprunner.api.limiter import RateLimiter
    from sprunner.reconcile.plan import build_plan
    from sprunner.runner import Runner

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def cancel() -> None:
        ui.warn("interrupted: saving the state and a partial report")
        main.cancel()

    interruption.on_first = lambda: loop.call_soon_threadsafe(cancel)
    if interruption.signum is not None:  # it came while locking or starting up
        cancel()

    started_at = time.time()
    runner: Runner | None = None
    try:
        async with ApiClient(
            base_url=api.api_url,
            api_key=api.api_key,
            limiter=RateLimiter(max_rps=apply_options.max_rps),
            parallel=apply_options.parallel,
        ) as client:
            remote = await list_remote(client)
            plan = build_plan(
                loaded.collections,
                remote,
                state.entries(),
                hasher=state.hasher,
                declared=loaded.declared,
                prune=apply_options.prune,
            )
            runner = Runner(
                client,
                state,
                plan,
                apply_id=uuid.uuid4().hex,
                run=apply_options.run,
                max_credits=apply_options.max_credits,
            )
            with ui.progress(runner.rows):
                await runner.execute()
            ui.debug(f"{client.calls} API calls, {client.rate_limited} answered 429")
    except asyncio.CancelledError:
        if interruption.signum is None:
            raise
    except ApiUnusableError:
        if runner is not None and apply_options.report is not None:
            partial = ApplyOutcome(api.api_url, started_at, time.time(), runner.outcomes())
            report.write_report(partial, apply_options.report)
        raise
    finally:
        interruption.on_first = None
    return ApplyOutcome(
        api_url=api.api_url,
        started_at=started_at,
        finished_at=time.time(),
        collections=runner.outcomes() if runner is not None else (),
        warnings=tuple(str(w) for w in loaded.warnings),
        interrupted_by=interruption.signum,
    )


def _write_outputs(outcome: ApplyOutcome, apply_options: ApplyOptions) -> None:
    if apply_options.report is not None:
        report.write_report(outcome, apply_options.report)
    if apply_options.junit is not None:
        from sprunner.junit import write_junit

        write_junit(outcome, apply_options.junit)
    if apply_options.json:
        ui.out(report.dumps(outcome).rstrip("\n"))
    else:
        ui.summary(outcome)
