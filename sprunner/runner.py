"""One apply, executed: per collection, its change, its run decision, its run, the waiting.

Every collection goes through its phases as soon as it can, concurrently with the others
under the client's window (where a due poll goes before a start, and a start before a
create: see api/window.py):

1. reconcile: create / PUT / delete per the plan; look for a run to adopt; decide by
   `when` and `schedule` whether a run is wanted;
2. the credit brake, in file order so that the outcome does not depend on which call
   answered first: decided up front from the plan where it can be, else a collection waits
   for the run decisions (not the starts) of the collections before it (runs/ledger.py);
3. finish earlier runs' pending results (runs/catchup.py); start (or adopt), wait for the run.

Each phase of a collection returns a frozen result (`sprunner.track`) that the runner folds
into that collection's `Track`, replacing it: nothing is changed in place. A collection's
failure is a `Failed` result and never stops the others; only an error that makes the API
unusable (bad key, quota spent) ends the apply. The terminal display reads frozen
`Progress` snapshots (`snapshot()`), and a partial report after an interruption reads
the tracks (`track.outcomes`).

On a shared state (PostgreSQL), each collection's work from its reconcile to the end of its
wait happens under that collection's lock (`sprunner.runs.locks`: claimed at the start of
phase 1, released when phase 3 ends for it); a collection another apply handles is
`skipped`. A lost state database fails the collections that still had something to start.

The client, clock, output and write backoff are injected: a unit test can run an apply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, ApiUnusableError
from sprunner.backoff import WRITE_BACKOFF, Backoff
from sprunner.jobfile.model import DesiredCollection
from sprunner.outcome import CollectionOutcome, Progress
from sprunner.reconcile import execute
from sprunner.reconcile.execute import Applied
from sprunner.reconcile.plan import Plan
from sprunner.reconcile.runplan import changed_for_run
from sprunner.runs import catchup, decision, delivery, poller, retry, starter
from sprunner.runs.judge import judge
from sprunner.runs.launch import launch
from sprunner.runs.ledger import CreditLedger
from sprunner.runs.locks import CollectionLocks
from sprunner.state import StateStore as State
from sprunner.state.base import StateConnectionLost
from sprunner.track import (
    Begun,
    Decided,
    Failed,
    Finished,
    PhaseResult,
    Reconciled,
    Recreated,
    Retrying,
    Seen,
    Track,
)
from sprunner.ui import Output

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
        max_credits: int | None = None,
        clock: Callable[[], float] = time.time,
        backoff: Backoff = WRITE_BACKOFF,
    ) -> None:
        self.client = client
        self.output = output
        self.backoff = backoff
        self.state = state
        self.apply_id = apply_id
        self.run_enabled = run
        self.max_credits = max_credits
        self.clock = clock
        self._tracks = [Track(item) for item in plan.items if item.action != "skip"]
        self.locks = CollectionLocks(state, client, apply_id=apply_id, runs=run)
        self._brake = retry.CreditBrake(max_credits)  # for retries: given the ledger in execute
        self.pace = poller.PaceBook()  # how long this apply's runs take, for their first polls

    @property
    def tracks(self) -> tuple[Track, ...]:
        return tuple(self._tracks)

    def _fold(self, index: int, result: PhaseResult) -> Track:
        track = self._tracks[index] = self._tracks[index].fold(result)
        return track

    async def execute(self) -> None:
        # Each collection goes reconcile -> decide -> brake -> start -> wait on its own;
        # the brake waits only for the decisions of the collections before it (ledger.py).
        ledger = CreditLedger([self._cost(t) for t in self._tracks], self.max_credits)
        # A retry is braked against every first run the ledger allows (runs/retry.py).
        self._brake = retry.CreditBrake(self.max_credits, first_runs=ledger.committed)
        self.state.defer_durability(True)  # group commit: one fsync before each POST
        self.client.before_post = self.state.synced
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
            self.client.before_post = None
            self.state.defer_durability(False)

    async def _settle(self, ledger: CreditLedger) -> None:
        await ledger.committed()  # all reconciled: the state's deferred work, amid the polls
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
                self.output.warn(f"{track.name}: run {verdict.reason}")
        try:
            await self._run(index, track)
        finally:  # results still pending are reported, also after an error (runs/catchup.py)
            self._fold(index, catchup.still_pending(self.state, self._tracks[index], self.output))

    async def _each(self, phase: Phase) -> None:
        async def guarded(index: int) -> None:
            try:
                await phase(index, self._tracks[index])
            except ApiUnusableError:
                raise
            except (ApiError, StateConnectionLost) as error:
                self._fold(index, Failed(str(error)))
                self.output.error(f"{self._tracks[index].name}: {error}")

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
            self.output.info(f"{track.name}: skipped: {track.run_reason}")
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
            self.output.error(f"{name}: {item.reason}")
            return Reconciled("error", error=item.reason), None
        if item.action == "delete":
            assert item.remote_id is not None
            await execute.delete(self.client, self.state, name, item.remote_id)
            self.output.info(f"{name}: deleted ({item.remote_id})")
            return Reconciled("delete", item.remote_id), None
        desired = item.desired
        assert desired is not None
        if item.action == "create":
            # With runs, the run start checks a fresh create for a replay (`_confirm`).
            applied = await execute.create(
                self.client,
                self.state,
                desired,
                apply_id=self.apply_id,
                backoff=self.backoff,
                check=not self.run_enabled,
            )
        elif item.action == "update":
            assert item.remote_id is not None
            applied = await execute.update(
                self.client,
                self.state,
                desired,
                item.remote_id,
                apply_id=self.apply_id,
                backoff=self.backoff,
            )
        else:
            assert item.remote_id is not None
            applied = Applied(item.remote_id, "unchanged")
        for note in applied.notes:
            self.output.warn(f"{name}: {note}")
        if applied.action != "unchanged":
            self.output.info(f"{name}: {applied.action} ({applied.collection_id})")
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
            adopted = await starter.adopt_ours(
                self.client, self.state, name=name, collection_id=collection_id
            )
            if adopted is not None:
                # Started by an apply that was killed: with the content it had then.
                self.state.mark_started(name, desired)
                return Decided(True, adopted=adopted)
        last_run_at = None
        if run_policy.schedule is not None and existing:
            last_run_at = await starter.last_run_time(
                self.client, self.state, name=name, collection_id=collection_id
            )
        verdict = decision.decide(
            run_policy,
            # Against the last *started* run's content: a change stays pending until a run
            # starts with it (--no-run, --max-credits, a schedule, an adopted older run).
            changed=changed_for_run(applied.action, self.state, desired),
            last_run_at=last_run_at,
            now=self.clock(),
        )
        if verdict.decision == "skip":
            self.output.debug(f"{name}: run skipped: {verdict.reason}")
            return Decided(False, skipped=verdict.reason)
        if existing and run_policy.overlap == "skip":
            adopted = await starter.adopt_running(
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
            self.output.info(
                f"{track.name}: adopted run {started.run.run_id} ({started.run.status})"
            )
            track = self._fold(index, Begun(started))
        else:
            begun = await self._start(index, track, desired)
            track = self._fold(index, begun)
            started = begun.started
        track = self._fold(index, await self._wait(index, track, desired, started))
        await self._retry(index, track, desired)

    async def _retry(self, index: int, track: Track, desired: DesiredCollection) -> None:
        """Re-run what failed in `<name>.retry` (sprunner/runs/retry.py); a no-op unless
        `run.retry` asks for it and the run completed with failed jobs."""
        run = track.run
        if run is None or track.run_state != "completed" or not retry.follows(desired, run):
            return
        # In flight again until the retries are over: a partial report after a signal says
        # so (the next apply adopts the run and resumes its retries).
        self._fold(index, Retrying())
        context = retry.Context(
            self.client,
            self.state,
            self.apply_id,
            self._brake,
            self.backoff,
            log=self.output.info,
            clock=self.clock,
            warn=self.output.warn,
        )
        self._fold(index, await retry.retry(context, desired, run))

    async def _start(self, index: int, track: Track, desired: DesiredCollection) -> Begun:
        assert track.collection_id is not None
        launched = await launch(
            self.client,
            self.state,
            desired,
            collection_id=track.collection_id,
            fresh=track.action == "create",
            apply_id=self.apply_id,
            backoff=self.backoff,
        )
        if launched.recreated is not None:
            self._fold(index, Recreated(launched.recreated))
            self.output.info(f"{track.name}: gone remotely; created again ({launched.recreated})")
        started = launched.started
        self.output.info(f"{track.name}: run {started.run.run_id} started")
        return Begun(started, credits=desired.credits)

    async def _confirm(self, index: int, track: Track) -> None:
        """No run start comes to check a fresh create for a replay: a GET does."""
        if not track.unchecked or track.collection_id is None or track.item.desired is None:
            return
        checked = await execute.confirm(
            self.client, self.state, track.item.desired, track.collection_id, backoff=self.backoff
        )
        self._fold(index, Recreated(checked))
        if checked != track.collection_id:
            self.output.info(f"{track.name}: gone remotely; created again ({checked})")

    async def _wait(
        self, index: int, track: Track, desired: DesiredCollection, started: starter.Started
    ) -> Finished:
        loop = asyncio.get_running_loop()
        # Event-loop time of the run's start, for the poller's pace estimates. A run we just
        # started began between the POST and its answer: `started_at` was taken before the
        # POST waited for a slot and the rate limiter (seconds, with hundreds of starts), so
        # the answer's arrival (now, late by a round trip at most) is the better guess.
        begun = loop.time() - (
            max(0.0, self.clock() - started.started_at) if started.adopted else 0
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
        starter.finish(self.state, name=track.name)
        if results is not None and results.error is not None:
            self._fold(index, Failed(results.error))
        if waited.timed_out:
            reason = f"still in progress after {desired.run.timeout:g}s; left running"
            self.output.error(f"{track.name}: run {waited.run.run_id} {reason}")
            return Finished(waited.run, "timed_out", reason)
        shown = None if delivered is None else delivered.report()
        return replace(judge(self.output, track.name, desired, run), results=shown)

    def snapshot(self) -> tuple[Progress, ...]:
        """What the live display shows: one frozen value per collection, as of now."""
        return tuple(track.progress() for track in self._tracks)

    def outcomes(self) -> tuple[CollectionOutcome, ...]:
        return tuple(track.outcome() for track in self._tracks)  # `track.outcomes` shows more
