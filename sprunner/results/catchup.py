"""Pending results: rows an earlier apply could not write, finished by the next (SPEC §10).

A drain that failed (a full disk, an unreachable store, an API error for good), a run we
stopped waiting for, or a fold of retries that could not be written leave their entry
unfinished in the state (`results/journal.py`). Each apply, for every collection with a
`results:` block it handles, finishes them before its own run phase, whether or not it
runs the collection (unchanged, not due, `never`):

- a publication recorded before a kill is rolled forward (no API call);
- a held entry (a run whose retries are over, its fold not written) is folded from its
  staged rows;
- any other drain is resumed from its checkpoint once its run has completed, and
  published; a run still in progress stays pending; a run the API no longer knows is
  published with the rows staged so far, the rest counted missing and warned about.

What is still pending after that is listed in the report (`results_pending`) and makes
the collection unhealthy (exit 1: "results are still pending", SPEC §3), until an apply
finishes it. The run an apply is about to adopt is left to its own delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, ApiUnusableError, NotFoundError
from sprunner.api.models import Run
from sprunner.errors import SprunnerError
from sprunner.jobfile.model import DesiredCollection
from sprunner.output.ui import Output
from sprunner.results.delivered import Delivered, roll_forward, shown_to, spool_dir_of
from sprunner.results.delivery import Delivery
from sprunner.results.errors import ResultsError
from sprunner.results.journal import (
    COMPANION,
    RESULTS,
    CurrentSlot,
    Entry,
    Slot,
    pending_results,
    unfinished,
)
from sprunner.retry import ledger as retryledger
from sprunner.retry.results import RetryResults
from sprunner.state import StateStore


@dataclass(frozen=True)
class ResultsState:
    """Earlier runs' results an apply published, and those still pending (for the track)."""

    caught_up: tuple[Mapping[str, Any], ...] = ()
    pending: tuple[Mapping[str, Any], ...] | None = None  # None: not looked at yet


class Collection(Protocol):
    """What the runner's track says of a collection (`track.Track`)."""

    @property
    def action(self) -> str | None: ...
    @property
    def collection_id(self) -> str | None: ...
    @property
    def adopted(self) -> Any: ...  # runs.starter.Started | None
    @property
    def item(self) -> Any: ...  # reconcile.plan.PlannedCollection


def _handled(track: Collection) -> DesiredCollection | None:
    """The collection's declaration, when this apply handles it and it has `results:`."""
    desired = track.item.desired
    if desired is None or desired.results is None or track.collection_id is None:
        return None
    return desired if track.action in ("create", "update", "unchanged") else None


async def caught_up(
    client: ApiClient, state: StateStore, track: Collection, output: Output
) -> ResultsState:
    """The runner's step before a collection's run phase: its pending results finished."""
    desired = _handled(track)
    if desired is None:
        return ResultsState()
    adopting = track.adopted.run.run_id if track.adopted is not None else None
    done = await catch_up(
        client, state, desired, adopting=adopting, warn=output.warn, log=output.info
    )
    for error in done.errors:
        output.warn(f"{desired.name}: {error}")
    return ResultsState(caught_up=done.published)


def still_pending(state: StateStore, track: Collection, output: Output) -> ResultsState:
    """The runner's last step of a collection: what is still pending, warned about."""
    desired = _handled(track)
    if desired is None:
        return ResultsState()
    try:
        # The run in flight is not pending: it is still going, and its adoption drains it.
        going = _in_flight(state, desired.name)
        pending = tuple(p for p in pending_shown(state, desired) if p["run_id"] != going)
    except SprunnerError:  # the state went away: the collection's error says so already
        return ResultsState()
    for entry in pending:
        output.warn(
            f"{desired.name}: the results of run {entry['run_id']} are still pending "
            f"({entry['lines']} rows staged): the next apply finishes them"
        )
    return ResultsState(pending=pending)


@dataclass(frozen=True)
class CaughtUp:
    """What one apply finished of a collection's pending results."""

    published: tuple[Mapping[str, Any], ...] = ()  # {run_id, to, lines, bytes, expired, missing}
    errors: tuple[str, ...] = ()


async def catch_up(
    client: ApiClient,
    state: StateStore,
    desired: DesiredCollection,
    *,
    adopting: str | None,
    warn: Callable[[str], None],
    log: Callable[[str], None],
) -> CaughtUp:
    """Finish the pending results of `desired` (all but those of the run `adopting`)."""
    if desired.results is None:
        return CaughtUp()
    published: list[Mapping[str, Any]] = []
    errors: list[str] = []
    for slot, entry in unfinished(state, desired.name):
        run_id = entry.checkpoint.run_id
        if run_id == adopting or run_id == _in_flight(state, getattr(slot, "name", "")):
            continue  # adopted by this apply or the next: its own delivery finishes it
        try:
            delivered = await _finish(client, state, desired, slot, entry, warn=warn)
        except ApiUnusableError:
            raise
        except (ApiError, ResultsError) as e:
            errors.append(f"results of run {run_id}: {e}")
            continue
        if delivered is not None:
            log(f"{desired.name}: the pending results of run {run_id} are published")
            published.append({"run_id": run_id, **delivered.report()})
    if state.get_blob(desired.name, RESULTS) is None:
        # No drain of this collection on record (a new or a deleted state): the one time
        # its folders are looked through for stages nothing can finish; afterwards every
        # stage is journaled before it is made, and its publication removes it.
        known = {e.checkpoint.run_id for _, e in unfinished(state, desired.name)}
        going = (_in_flight(state, desired.name), _in_flight(state, desired.name + COMPANION))
        known.update(r for r in (adopting, *going) if r is not None)
        await asyncio.to_thread(_sweep_strays, desired, known, warn)
    return CaughtUp(tuple(published), tuple(errors))


def _sweep_strays(desired: DesiredCollection, known: set[str], warn: Callable[[str], None]) -> None:
    """Remove staged files beside the collection's results that no entry of the state
    knows (`known`: the runs of its unfinished entries and those in flight): nothing can
    finish them (their checkpoints went with a deleted state), and a `.part` must not
    outlive the apply after it. Said loudly, unless the run's file is published."""
    from sprunner.results.publication import remove, stray_stages

    assert desired.results is not None
    try:
        strays = stray_stages(desired.results.to, desired.name, known)
    except ResultsError:
        return  # a destination that cannot be resolved: its drains say so
    for stray in strays:
        remove(stray.files)
        if not stray.published:
            warn(
                f"{desired.name}: removed the staged rows of run {stray.run} "
                f"({len(stray.files)} file(s)): no record in the state can finish them "
                "(was the state deleted?)"
            )


async def _finish(
    client: ApiClient,
    state: StateStore,
    desired: DesiredCollection,
    slot: Slot,
    entry: Entry,
    *,
    warn: Callable[[str], None],
) -> Delivered | None:
    """Publish one pending entry; None when it stays pending (its run still going, or its
    file still cannot be written: the delivery warned why)."""
    checkpoint = entry.checkpoint
    if checkpoint.publication is not None:
        return await asyncio.to_thread(roll_forward, desired, slot, entry, spool_dir_of(state))
    journal = getattr(slot, "name", desired.name)
    collection_id = checkpoint.collection_id or _recorded_id(state, journal)
    if collection_id is None:
        raise ResultsError("the collection of its run is not known")
    try:
        run = await client.get_run(collection_id, checkpoint.run_id, name=journal)
    except NotFoundError:
        run = _gone(checkpoint.run_id, collection_id, entry)
        warn(
            f"{desired.name}: run {checkpoint.run_id} is gone from the API: the "
            f"{checkpoint.lines} rows staged are published, the rest counted missing"
        )
    if not run.done:
        return None
    if entry.held:
        return await _fold(client, state, desired, slot, entry, run, warn=warn)
    retried = bool(_retry_runs(state, desired, slot, entry))
    delivery = Delivery(
        client,
        state,
        desired,
        run,
        started_at=0.0,  # the checkpoint keeps the run start its rows carry
        warn=warn,
        slot=slot,
        journal=journal,
    )
    await delivery.open()
    try:
        # None: it failed, and said why (still pending); or, retried, drained and held.
        delivered = await delivery.finish(run, hold=retried)
    finally:
        delivery.close()
    if not retried or delivery.error is not None:
        return delivered
    held = slot.load()  # its drain failed before its retries ran: drained now, then folded
    if held is None or not held.held:
        return None
    return await _fold(client, state, desired, slot, held, run, warn=warn)


async def _fold(
    client: ApiClient,
    state: StateStore,
    desired: DesiredCollection,
    slot: Slot,
    entry: Entry,
    run: Run,
    *,
    warn: Callable[[str], None],
) -> Delivered | None:
    """The one file of a run and its retries. A retry run the ledger knows but whose rows
    were not all staged (its drain failed, or it ended after the apply stopped waiting) is
    drained first: the file then says what each request's last run said. Until every such
    run is staged the fold waits (None: still pending), never publishing a request's
    earlier outcome as its final one; only a retry run the API no longer has is folded
    without (warned: its rows are lost). A displaced entry's stages, and the retry runs its
    ledger knew, travel with it (`results.journal.displace`)."""
    results = RetryResults(
        client, state, desired, run, entry.checkpoint, warn=warn, slot=slot, staged=entry.staged
    )
    runs = {int(k): str(v["run_id"]) for k, v in results.staged().items() if k.isdigit()}
    if entry.staged is None:
        book = retryledger.load(state, desired.name, run.run_id)
        runs.update({a.attempt: a.run_id for a in book.attempts if a.run_id})
        for record in book.attempts:
            if not record.run_id and record.collection_id:
                found = await _unrecorded(client, state, desired, record.collection_id)
                if found is not None:
                    runs[record.attempt] = found
    retried = []
    for attempt, run_id in sorted(runs.items()):
        staged = results.staged().get(str(attempt))
        settled = isinstance(staged, Mapping) and bool(staged.get("settled"))
        if not settled:
            try:
                if not await _stage(client, state, desired, results, attempt, run_id):
                    return None  # not yet (still going, or its rows cannot be written)
            except NotFoundError:
                warn(
                    f"{desired.name}: retry run {run_id} is gone from the API: the results "
                    f"of run {run.run_id} are folded without it and the retries after it"
                )
                break
        retried.append((attempt, run_id))
    shown = await results.publish(retried)  # None: it failed, and said why (still pending)
    return None if shown is None else Delivered(**shown)


async def _stage(
    client: ApiClient,
    state: StateStore,
    desired: DesiredCollection,
    results: RetryResults,
    attempt: int,
    run_id: str,
) -> bool:
    """Drain retry run `run_id` into its stage; False when it cannot be (yet)."""
    name = desired.name + COMPANION
    companion = _recorded_id(state, name)
    if companion is None:
        return False
    run = await client.get_run(companion, run_id, name=name)
    if not run.done:
        return False
    hook = await results.begin(attempt, run, 0.0)
    if hook is None:
        return False
    try:
        await hook.done(run)
    finally:
        hook.close()
    return hook.error is None


def _retry_runs(
    state: StateStore, desired: DesiredCollection, slot: Slot, entry: Entry
) -> dict[str, Any]:
    """The retry runs of `entry`'s run: those it carries (displaced), or those the ledger of
    the collection's current run knows. Its file is their fold, never the first run alone."""
    if entry.staged is not None:
        attempts = entry.staged.get("attempts")
        return dict(attempts) if isinstance(attempts, Mapping) else {}
    if not isinstance(slot, CurrentSlot) or slot.name != desired.name:
        return {}
    book = retryledger.load(state, desired.name, entry.checkpoint.run_id)
    return {str(a.attempt): a.run_id for a in book.attempts if a.run_id}


async def _unrecorded(
    client: ApiClient, state: StateStore, desired: DesiredCollection, collection_id: str
) -> str | None:
    """The retry run a ledger record began but never noted (the store went away between its
    POST and its id): the companion's pending start, resolved by listing its runs as an
    adoption does; None when that start was never sent."""
    from sprunner.runs import start

    name = desired.name + COMPANION
    started = await start.adopt_ours(client, state, name=name, collection_id=collection_id)
    if started is None:
        return None
    if started.run.done:
        start.finish(state, name=name)
    return started.run.run_id


def _in_flight(state: StateStore, name: str) -> str | None:
    """The run the state records in flight for `name` (the next adoption's)."""
    recorded = state.get(name) if name else None
    inflight = getattr(recorded, "inflight", None)
    return getattr(inflight, "run_id", None)


def _recorded_id(state: StateStore, name: str) -> str | None:
    recorded = state.get(name)
    return recorded.id if recorded is not None and recorded.id else None


def _gone(run_id: str, collection_id: str, entry: Entry) -> Run:
    """A run the API forgot, as far as its staged rows tell: publish them as they are, the
    rest of its jobs (as many as its entry says it had) counted missing."""
    lines = entry.checkpoint.lines
    total = max(entry.checkpoint.seen_finished, lines, entry.total or 0)
    return Run(run_id, collection_id, "completed", total, lines, 0, 0, all_jobs_persisted=True)


def pending_shown(state: StateStore, desired: DesiredCollection) -> tuple[dict[str, Any], ...]:
    """The collection's pending results as the report shows them (env() values masked)."""
    return tuple(
        {"run_id": p.run_id, "to": shown_to(desired, p.data), "lines": p.lines, "held": p.held}
        for p in pending_results(state, desired.name)
    )


__all__ = ["COMPANION", "CaughtUp", "ResultsState", "catch_up", "caught_up", "still_pending"]
