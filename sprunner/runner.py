"""One apply, executed: the plan's changes, then the runs, then the waiting.

Three phases, each concurrent across collections under the client's bound:

1. reconcile: create / PUT / delete per the plan; look for a run to adopt; decide by
   `when` and `schedule` whether a run is wanted;
2. the credit brake: applied to the wanted runs in file order, so the outcome does not
   depend on which call answered first;
3. start (or adopt) and wait for every run.

A collection's failure is recorded in its row and never stops the others; only an error
that makes the API unusable (bad key, quota spent) ends the apply. Progress lives in the
runner's rows; the terminal display reads frozen `Progress` snapshots of them
(`snapshot()`), and a partial report after an interruption reads `outcomes()`.

The client, the clock, the output and the write backoff are injected, so one apply can be
run against an in-memory fake of the API in a unit test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, ApiUnusableError, NotFoundError
from sprunner.api.models import Run
from sprunner.backoff import WRITE_BACKOFF, Backoff
from sprunner.jobfile.model import DesiredCollection
from sprunner.outcome import Action, CollectionOutcome, Progress, RunOutcome, RunState
from sprunner.reconcile import execute
from sprunner.reconcile.execute import Applied
from sprunner.reconcile.plan import Plan, PlannedCollection
from sprunner.runs import policy, poller, starter
from sprunner.state import State
from sprunner.ui import Output

# The error of a collection whose change was still in flight when the apply was stopped.
CUT_SHORT = "interrupted before its change was confirmed; the next apply checks it again"


@dataclass
class Row:
    """The live progress of one collection (mutable: the display reads it as it changes)."""

    item: PlannedCollection
    action: Action | None = None
    collection_id: str | None = None
    error: str | None = None
    wants_run: bool = False
    adopted: starter.Started | None = None
    run: Run | None = None
    run_state: RunState | None = None
    run_reason: str | None = None
    refused: bool = False
    credits: int = 0

    @property
    def name(self) -> str:
        return self.item.name

    def snapshot(self) -> Progress:
        return Progress(self.name, self.action, self.run_state, self.run)

    def outcome(self) -> CollectionOutcome:
        desired = self.item.desired
        run = None
        if self.run_state is not None:
            counts = self.run
            max_failed = desired.run.max_failed if desired is not None else None
            within = True
            if counts is not None and max_failed is not None:
                bad = counts.failed_requests + counts.timeout_requests
                within = max_failed.allows(bad, counts.total_requests)
            run = RunOutcome(
                status=self.run_state,
                run_id=counts.run_id if counts else None,
                total_requests=counts.total_requests if counts else 0,
                success_requests=counts.success_requests if counts else 0,
                failed_requests=counts.failed_requests if counts else 0,
                timeout_requests=counts.timeout_requests if counts else 0,
                failed_jobs=counts.failed_jobs if counts else (),
                credits=self.credits,
                adopted=self.adopted is not None,
                reason=self.run_reason,
                within_max_failed=within,
                refused=self.refused,
            )
        return CollectionOutcome(
            name=self.name,
            file=desired.file if desired is not None else None,
            action=self.action or "error",
            collection_id=self.collection_id or self.item.remote_id,
            requests=self.item.requests,
            run=run,
            error=self.error if self.action is not None else self.error or CUT_SHORT,
        )


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
        self.rows = [Row(item) for item in plan.items if item.action != "skip"]

    async def execute(self) -> None:
        await self._each(self._reconcile)
        wanted = [row for row in self.rows if row.wants_run and row.adopted is None]
        budget = policy.apply_budget(
            [(row.name, row.item.credits) for row in wanted], self.max_credits
        )
        for row in wanted:
            decision = budget[row.name]
            if decision.decision == "skip":
                row.wants_run, row.refused = False, True
                row.run_state, row.run_reason = "skipped", decision.reason
                self.output.warn(f"{row.name}: run {decision.reason}")
        await self._each(self._run)

    async def _each(self, step: Callable[[Row], Awaitable[None]]) -> None:
        async def guarded(row: Row) -> None:
            try:
                await step(row)
            except ApiUnusableError:
                raise
            except ApiError as error:
                row.error = str(error)
                if row.action is None:
                    row.action = "error"
                elif row.run_state is None or row.run_state == "in_progress":
                    row.run_state, row.run_reason = "error", str(error)
                self.output.error(f"{row.name}: {error}")

        # Not a TaskGroup: it would wrap the one error that must end the apply
        # (ApiUnusableError) in an ExceptionGroup, and it is not in Python 3.10.
        tasks = [asyncio.ensure_future(guarded(row)) for row in self.rows]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- phase 1 ------------------------------------------------------------------------
    async def _reconcile(self, row: Row) -> None:
        item = row.item
        if item.action == "error":
            row.action, row.error = "error", item.reason
            self.output.error(f"{row.name}: {item.reason}")
            return
        if item.action == "delete":
            assert item.remote_id is not None
            await execute.delete(self.client, self.state, row.name, item.remote_id)
            row.action, row.collection_id = "deleted", item.remote_id
            self.output.info(f"{row.name}: deleted ({item.remote_id})")
            return
        desired = item.desired
        assert desired is not None
        if item.action == "create":
            applied = await execute.create(
                self.client, self.state, desired, apply_id=self.apply_id, backoff=self.backoff
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
            applied = execute.Applied(item.remote_id, "unchanged")
        row.action, row.collection_id = applied.action, applied.collection_id
        for note in applied.notes:
            self.output.warn(f"{row.name}: {note}")
        if applied.action != "unchanged":
            self.output.info(f"{row.name}: {applied.action} ({applied.collection_id})")
        if self.run_enabled:
            await self._decide(row, desired, applied)

    async def _decide(self, row: Row, desired: DesiredCollection, applied: Applied) -> None:
        """Whether the collection runs: an interrupted run to adopt, `when`, `schedule`, and
        with `overlap: skip` a run in progress to adopt instead of starting one."""
        run_policy = desired.run
        existing = applied.action != "created"
        adopted = None
        if existing:
            # A run that an interrupted apply left in flight is ours: always waited for.
            adopted = await starter.adopt_ours(
                self.client, self.state, name=row.name, collection_id=applied.collection_id
            )
        if adopted is None:
            last_run_at = None
            if run_policy.schedule is not None and existing:
                last_run_at = await starter.last_run_time(
                    self.client, self.state, name=row.name, collection_id=applied.collection_id
                )
            decision = policy.decide(
                run_policy,
                changed=applied.action in ("created", "updated"),
                last_run_at=last_run_at,
                now=self.clock(),
            )
            if decision.decision == "skip":
                row.run_state, row.run_reason = "skipped", decision.reason
                self.output.debug(f"{row.name}: run skipped: {decision.reason}")
                return
            if existing and run_policy.overlap == "skip":
                adopted = await starter.adopt_running(
                    self.client, self.state, name=row.name, collection_id=applied.collection_id
                )
        row.wants_run = True
        if adopted is not None:
            row.adopted = adopted
            # In flight from now on: a partial report after a signal lists it with its id.
            row.run, row.run_state = adopted.run, "in_progress"

    # -- phase 3 ------------------------------------------------------------------------
    async def _run(self, row: Row) -> None:
        if not row.wants_run:
            return
        desired = row.item.desired
        assert desired is not None and row.collection_id is not None
        if row.adopted is not None:
            started = row.adopted
            self.output.info(f"{row.name}: adopted run {started.run.run_id} ({started.run.status})")
        else:
            started = await self._start(row, desired)
        row.run, row.run_state = started.run, "in_progress"
        await self._wait(row, desired, started)

    async def _start(self, row: Row, desired: DesiredCollection) -> starter.Started:
        assert row.collection_id is not None
        try:
            started = await starter.start(
                self.client,
                self.state,
                name=row.name,
                collection_id=row.collection_id,
                fresh=row.action == "created",
                backoff=self.backoff,
            )
        except NotFoundError:
            # Deleted remotely since it was reconciled: the job file still wants it.
            self.state.forget(row.name)
            applied = await execute.create(
                self.client, self.state, desired, apply_id=self.apply_id, backoff=self.backoff
            )
            row.action, row.collection_id = "created", applied.collection_id
            self.output.info(f"{row.name}: gone remotely; created again ({applied.collection_id})")
            started = await starter.start(
                self.client,
                self.state,
                name=row.name,
                collection_id=row.collection_id,
                fresh=True,
                backoff=self.backoff,
            )
        row.credits = desired.credits
        if started.adopted:
            row.adopted = started
        self.output.info(f"{row.name}: run {started.run.run_id} started")
        return started

    async def _wait(self, row: Row, desired: DesiredCollection, started: starter.Started) -> None:
        loop = asyncio.get_running_loop()
        # Event-loop time of the run's start, for the pace estimate of the poller. A run we
        # just started began between the POST and its answer: `started_at` was taken before
        # the POST waited for a free slot and the rate limiter, so with hundreds of starts it
        # can be seconds early and the first pace estimate would put the next poll far past
        # the run's end. The answer's arrival (now) is late by one round trip at most.
        if not started.adopted:
            begun = loop.time()
        else:
            begun = loop.time() - max(0.0, self.clock() - started.started_at)

        def seen(run: Run) -> None:
            row.run = run

        waited = await poller.wait_for_run(
            self.client,
            started.run,
            name=row.name,
            poll_interval=desired.run.poll_interval,
            deadline=loop.time() + desired.run.timeout,
            started=begun,
            on_update=seen,
        )
        row.run = waited.run
        starter.finish(self.state, name=row.name)
        if waited.timed_out:
            row.run_state = "timed_out"
            row.run_reason = f"still in progress after {desired.run.timeout:g}s; left running"
            self.output.error(f"{row.name}: run {waited.run.run_id} {row.run_reason}")
            return
        row.run_state = "completed"
        self._judge(row, desired, waited.run)

    def _judge(self, row: Row, desired: DesiredCollection, run: Run) -> None:
        bad = run.failed_requests + run.timeout_requests
        line = (
            f"{row.name}: run {run.run_id} completed: {run.success_requests}/"
            f"{run.total_requests} ok, {run.failed_requests} failed, "
            f"{run.timeout_requests} timed out"
        )
        if desired.run.max_failed.allows(bad, run.total_requests):
            self.output.info(line)
        else:
            row.run_reason = (
                f"{bad} failed or timed-out jobs; max_failed is {desired.run.max_failed}"
            )
            self.output.error(f"{line} (over max_failed {desired.run.max_failed})")

    def snapshot(self) -> tuple[Progress, ...]:
        """What the live display shows: one frozen value per collection, as of now."""
        return tuple(row.snapshot() for row in self.rows)

    def outcomes(self) -> tuple[CollectionOutcome, ...]:
        return tuple(row.outcome() for row in self.rows)
