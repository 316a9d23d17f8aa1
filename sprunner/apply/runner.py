"""One apply, executed: per collection, its change, its run decision, its run, the waiting.

Every collection goes through its phases as soon as it can, concurrently with the others:

1. reconcile: create / PUT / delete per the plan; look for a run to adopt; decide by
   `when` and `schedule` whether a run is wanted;
2. the credit brake, in file order so that the outcome does not depend on which call
   answered first: decided up front from the plan where it can be, else a collection waits
   for the run decisions (not the starts) of the collections before it (runs/ledger.py);
3. finish earlier runs' pending results (results/catchup.py); start (or adopt), wait for the run;
4. judge: the latest verdict recorded (runs/judge.py).

Each phase of a collection returns a frozen result (`sprunner.apply.track`) that the runner folds
into that collection's `Track`, replacing it: nothing is changed in place. A collection's
failure is a `Failed` result and never stops the others; only an error that makes the API
unusable (bad key, quota spent) ends the apply. The terminal display reads frozen
`Progress` snapshots (`snapshot()`), and a partial report reads `outcomes()`.

On a shared state (PostgreSQL), each collection's work from its reconcile to the end of its
wait happens under that collection's lock (`sprunner.runs.locks`: claimed at the start of
phase 1, released when phase 3 ends for it); a collection another apply handles is
`skipped`. A lost state database fails the collections that still had something to start;
a run started as it went away is reported by its id (`start.Started.unrecorded`).
What every phase needs (client, state, apply id, output, clock, write backoff) comes in one
`ApplyContext` (`apply/context.py`): a unit test can run an apply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, ApiUnusableError
from sprunner.apply.context import ApplyContext
from sprunner.apply.track import (
    Begun,
    Decided,
    Details,
    Failed,
    Finished,
    PhaseResult,
    Reconciled,
    Recreated,
    Retrying,
    Seen,
    Track,
    outcomes,
)
from sprunner.errors import StateError
from sprunner.jobfile.model import DesiredCollection
from sprunner.output.ui import Output
from sprunner.reconcile import execute
from sprunner.reconcile.actions import DONE
from sprunner.reconcile.execute import Applied
from sprunner.reconcile.plan import Plan
from sprunner.report.fingerprints import RequestFingerprints
from sprunner.report.outcome import CollectionOutcome, Progress
from sprunner.results import catchup, delivery
from sprunner.retry import loop as retry
from sprunner.runs import decision, judge, poller, start
from sprunner.runs.launch import launch
from sprunner.runs.ledger import CreditBrake, CreditLedger
from sprunner.runs.locks import CollectionLocks
from sprunner.state import StateStore as State
from sprunner.state import lifecycle
from sprunner.util.backoff import WRITE_BACKOFF, Backoff

# A phase of one collection: it publishes its results through the callback it is given.
Phase = Callable[[int, Track], Awaitable[None]]


class Runner:
    def __init__(
        self,
        client: ApiClient,
        state: State,
        plan: Plan,
        *,
        output: Output,
        apply_id: str,
        run: bool = True,
        run_now: bool = False,
        max_credits: int | None = None,
        clock: Callable[[], float] = time.time,
        backoff: Backoff = WRITE_BACKOFF,
    ) -> None:
        # What every phase is handed; its credit brake for retries is set in `execute`.
        self.ctx = ApplyContext(client, state, apply_id, output, clock=clock, backoff=backoff)
        self.client, self.state, self.output = client, state, output
        self.run_enabled = run
        self.run_now = run_now  # `apply --run-now`: runs whatever `when` and `schedule` say
        self.max_credits = max_credits
        self._tracks = [Track(item) for item in plan.items if item.action != "skip"]
        self.locks = CollectionLocks(state, client, apply_id=apply_id, runs=run)
        self.pace = poller.PaceBook()  # how long this apply's runs take, for their first polls

    def _fold(self, index: int, result: PhaseResult) -> Track:
        track = self._tracks[index] = self._tracks[index].fold(result)
        return track

    async def execute(self) -> None:
        # Each collection goes reconcile -> decide -> brake -> start -> wait on its own;
        # the brake waits only for the decisions of the collections before it (ledger.py).
        ledger = CreditLedger([self._cost(t) for t in self._tracks], self.max_credits)
        # A retry is braked against every first run the ledger allows (retry/loop.py).
        self.ctx = self.ctx.with_brake(CreditBrake(self.max_credits, first_runs=ledger.committed))
        settling = asyncio.ensure_future(self._settle(ledger))
        try:
            # On a shared state the collection's lock is held from its claim (in
            # `_reconcile`) to the end of its wait (`runs.locks`).
            work = self.locks.holding(
                lambda index, track: self._collection(index, track, ledger),
                lambda index: self._tracks[index],
            )
            await self._each(work)
        finally:
            settling.cancel()
            await asyncio.gather(settling, return_exceptions=True)

    async def _settle(self, ledger: CreditLedger) -> None:
        await ledger.committed()  # all reconciled: the display-only digests, amid the polls
        await self.state.settle()

    def _cost(self, track: Track) -> int | None:
        """A run's cost for the brake, or None when the plan says no run can start."""
        if not self.run_enabled or track.item.action in ("delete", "error"):
            return None
        return track.item.credits

    async def _collection(self, index: int, track: Track, ledger: CreditLedger) -> None:
        try:
            await self._reconcile(index, track)
        finally:
            # Also on failure or interruption: the collections after it wait for this slot.
            done = self._tracks[index]
            ledger.resolve(index, done.wants_run and done.adopted is None)
        track = self._tracks[index]
        if track.wants_run and track.adopted is None:
            verdict = await ledger.verdict(index)
            if verdict.decision == "skip":
                track = self._fold(index, Decided(False, skipped=verdict.reason, refused=True))
                self.output.warn(f"{track.name}: run {verdict.reason}", event="run_refused")
        try:
            await self._run(index, track)
        finally:  # results still pending are reported, also after an error (results/catchup.py)
            self._fold(index, catchup.still_pending(self.state, self._tracks[index], self.output))
        # The lifecycle's last step: the verdict recorded, or the recorded one read back.
        done = self._tracks[index]
        self._fold(index, judge.judged(self.state, done, now=self.ctx.clock(), output=self.output))

    async def _each(self, phase: Phase) -> None:
        async def guarded(index: int) -> None:
            try:
                await phase(index, self._tracks[index])
            except ApiUnusableError:
                raise
            except (ApiError, StateError) as error:  # a lost or full state store too
                track = self._fold(index, Failed(str(error)))
                self.output.error(f"{track.name}: {error}", event="collection_error")

        # Not a TaskGroup: it would wrap the one error that must end the apply
        # (ApiUnusableError) in an ExceptionGroup, and it is not in Python 3.10.
        tasks = [asyncio.ensure_future(guarded(i)) for i in range(len(self._tracks))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- phase 1: reconcile, then decide ------------------------------------------------
    async def _reconcile(self, index: int, track: Track) -> None:
        # A shared state: this collection's lock, and its plan made again (`runs.locks`).
        track = self._tracks[index] = await self.locks.claim(track)
        if track.action == "skip":
            line = f"{track.name}: skipped: {track.run_reason}"
            self.output.info(line, event="collection_skipped")
            return
        reconciled, applied = await self._change(track)
        track = self._fold(index, reconciled)
        if applied is not None and self.run_enabled:
            assert track.item.desired is not None
            self._fold(index, await self._decide(track, track.item.desired, applied))

    async def _change(self, track: Track) -> tuple[Reconciled, Applied | None]:
        """Create, update or delete per the plan (or nothing: unchanged)."""
        item, name = track.item, track.name
        self.locks.check()
        if item.action == "error":
            self.output.error(f"{name}: {item.reason}", event="collection_error")
            return Reconciled("error", error=item.reason), None
        if item.action == "delete":
            assert item.remote_id is not None
            await execute.delete(self.client, self.state, name, item.remote_id)
            self.output.info(f"{name}: deleted ({item.remote_id})", event="collection_deleted")
            return Reconciled("delete", item.remote_id), None
        # With runs, the run start checks a fresh create for a replay (`_confirm`).
        applied = await execute.carry_out(
            self.client,
            self.state,
            item,
            apply_id=self.ctx.apply_id,
            backoff=self.ctx.backoff,
            check=not self.run_enabled,
        )
        for note in applied.notes:
            self.output.warn(f"{name}: {note}")
        if applied.action != "unchanged":
            done = DONE[applied.action]  # the words the README and the report use
            event = f"collection_{done}"
            self.output.info(f"{name}: {done} ({applied.collection_id})", event=event)
        return Reconciled(
            applied.action, applied.collection_id, unchecked=applied.unchecked
        ), applied

    async def _decide(self, track: Track, desired: DesiredCollection, applied: Applied) -> Decided:
        """Whether the collection runs: an interrupted run to adopt, `when`, `schedule`, and
        with `overlap: skip` a run in progress to adopt instead of starting one."""
        run_policy, name, collection_id = desired.run, track.name, applied.collection_id
        existing = applied.action != "create"
        if existing:
            # A run that an interrupted apply left in flight is ours: always waited for.
            adopted = await start.adopt_ours(
                self.client, self.state, name=name, collection_id=collection_id
            )
            if adopted is not None:
                # Started by an apply that was killed, with the content it had then (the
                # lifecycle recorded it): a change since stays pending for a later apply.
                return Decided(True, adopted=adopted)
        last_run_at = None
        if self.run_now:  # whatever `when` and `schedule` say
            run_policy = replace(run_policy, when="always", schedule=None)
        if run_policy.schedule is not None and existing:
            last_run_at = await start.last_run_time(
                self.client, self.state, name=name, collection_id=collection_id
            )
        verdict = decision.decide(
            run_policy,
            # Against the last *started* run's content: a change stays pending until a run
            # starts with it (--no-run, --max-credits, a schedule, an adopted older run).
            changed=lifecycle.change_pending(self.state, desired),
            last_run_at=last_run_at,
            now=self.ctx.clock(),
        )
        if verdict.decision == "skip":
            self.output.debug(f"{name}: run skipped: {verdict.reason}", event="run_skipped")
            return Decided(False, skipped=verdict.reason)
        if existing and run_policy.overlap == "skip":
            adopted = await start.adopt_running(
                self.client, self.state, name=name, collection_id=collection_id
            )
            return Decided(True, adopted=adopted)
        return Decided(True)

    # -- phase 3: start or adopt, then wait ---------------------------------------------
    async def _run(self, index: int, track: Track) -> None:
        self._fold(index, await catchup.caught_up(self.client, self.state, track, self.output))
        if not track.wants_run:
            await self._confirm(index, track)
            return
        desired = track.item.desired
        assert desired is not None
        if track.adopted is not None:
            started = track.adopted
            shown = f"{track.name}: adopted run {started.run.run_id} ({started.run.status})"
            self.output.info(shown, event="run_adopted")
            track = self._fold(index, Begun(started))
        else:
            track = self._fold(index, begun := await self._start(index, track, desired))
            started = begun.started
        if started.unrecorded is not None:  # reported by its id; the next apply adopts it
            self._fold(index, Failed(started.unrecorded))
            self.output.error(f"{track.name}: {started.unrecorded}", event="collection_error")
            return
        track = self._fold(index, await self._wait(index, track, desired, started))
        await self._retry(index, track, desired)

    async def _retry(self, index: int, track: Track, desired: DesiredCollection) -> None:
        """Re-run what failed in `<name>.retry` (retry/loop.py); a no-op unless
        `run.retry` asks for it and the run completed with failed jobs."""
        run = track.run
        if run is None or track.run_state != "completed" or not retry.follows(desired, run):
            return
        # In flight again until the retries are over: a partial report after a signal says
        # so (the next apply adopts the run and resumes its retries).
        self._fold(index, Retrying())
        self._fold(index, await retry.retry(self.ctx, desired, run))

    async def _start(self, index: int, track: Track, desired: DesiredCollection) -> Begun:
        assert track.collection_id is not None
        fresh = track.action == "create"
        launched = await launch(self.ctx, desired, collection_id=track.collection_id, fresh=fresh)
        if launched.recreated is not None:
            self._fold(index, Recreated(launched.recreated))
            created = launched.recreated
            line = f"{track.name}: gone remotely; created again ({created})"
            self.output.info(line, event="collection_recreated")
        started = launched.started
        self.output.info(
            f"{track.name}: run {started.run.run_id} started",
            event="run_started",
            total_requests=started.run.total_requests,
            cost=desired.credits,
        )
        return Begun(started)

    async def _confirm(self, index: int, track: Track) -> None:
        """No run start comes to check a fresh create for a replay: a GET does."""
        if not track.unchecked or track.collection_id is None or track.item.desired is None:
            return
        checked = await execute.confirm(
            self.client,
            self.state,
            track.item.desired,
            track.collection_id,
            backoff=self.ctx.backoff,
        )
        self._fold(index, Recreated(checked))
        if checked != track.collection_id:
            line = f"{track.name}: gone remotely; created again ({checked})"
            self.output.info(line, event="collection_recreated")

    async def _wait(
        self, index: int, track: Track, desired: DesiredCollection, started: start.Started
    ) -> Finished:
        loop = asyncio.get_running_loop()
        # Event-loop time of the run's start, for the poller's pace estimates. A run we just
        # started began between the POST and its answer: `started_at` was taken before the
        # POST waited for a slot and the rate limiter (seconds, with hundreds of starts), so
        # the answer's arrival (now, late by a round trip at most) is the better guess.
        begun = loop.time() - (
            max(0.0, self.ctx.clock() - started.started_at) if started.adopted else 0
        )
        # Results are drained in the poll loop; the run stays in flight in the state until
        # its file is published, so a kill mid-drain is adopted and resumed.
        results = await delivery.begin(
            self.client,
            self.state,
            desired,
            started.run,
            started_at=started.started_at,
            warn=self.output.warn,
        )
        try:
            waited = await poller.wait_for_run(
                self.client,
                started.run,
                name=track.name,
                poll_interval=desired.run.poll_interval,
                deadline=loop.time() + desired.run.timeout,
                started=begun,
                on_update=lambda run: self._fold(index, Seen(run)),
                on_poll=None if results is None else results.on_poll,
                max_delay=None if results is None else delivery.max_poll_delay(desired.run),
                pace=self.pace,
            )
            # With retries to follow, the file is held: published once, after them.
            hold = retry.follows(desired, waited.run)
            run, delivered = await delivery.end(
                results, waited.run, timed_out=waited.timed_out, hold=hold
            )
        finally:
            if results is not None:
                results.close()
        if not hold:  # with retries to follow, in flight until they are over (retry.py)
            start.finish(self.state, name=track.name)
        if results is not None and results.error is not None:
            self._fold(index, Failed(results.error))
        if waited.timed_out:
            reason = f"still in progress after {desired.run.timeout:g}s; left running"
            return judge.timed_out(self.output, track.name, waited.run, reason)
        shown = None if delivered is None else delivered.report()
        finished = judge.judge(self.output, track.name, desired, run, retrying=hold)
        return replace(finished, results=shown)

    def snapshot(self) -> tuple[Progress, ...]:
        """What the live display shows: one frozen value per collection, as of now."""
        return tuple(track.progress() for track in self._tracks)

    def outcomes(
        self, prints: RequestFingerprints | None = None, details: Details | None = None
    ) -> tuple[CollectionOutcome, ...]:
        """What a report shows (failed jobs fingerprinted, with the listing's details)."""
        return outcomes(self._tracks, prints, details)
