"""Starting a run, or adopting one, so that no collection is run twice by mistake.

- Before the POST, the state records a pending start (no run id yet, the time, the content
  it starts with). After the answer, the run id. A kill -9 between the two leaves the
  pending mark: the next apply looks for the run that POST started instead of starting
  another, and records the content *that* run started with (state/lifecycle.py).
- A run id the API returned is never lost to the state store going away right after: the
  run is reported (`Started.unrecorded` says why it was not recorded), and the pending
  mark, durable before the POST, makes the next apply adopt it.
- After an ambiguous failure of the POST (5xx, dropped connection), the runs of the
  collection are listed and a run this attempt started is adopted — in progress *or
  already completed*, since a short run can end before we look. Ours is the newest run
  (in the API's newest-first list) when it is newer than every run known before the
  attempt. Our clock is never compared with the API's `created_at`: the API's clock may be
  minutes off ours. So the runs known before the attempt must be complete: when the state
  does not know the newest run, the runs are listed before the POST.
- A run an interrupted apply left in flight is adopted by the next apply, whatever the
  policy says: it was started for a reason and never reported.
- With `overlap: skip`, when the policy wants a run and one is already in progress
  remotely, that run is adopted: waited for and reported, and no second one is started.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, replace

from sprunner.api.client import ApiClient
from sprunner.api.errors import NotFoundError
from sprunner.api.models import Run
from sprunner.errors import StateError
from sprunner.state import StateStore as State
from sprunner.state import lifecycle
from sprunner.util.backoff import WRITE_BACKOFF, Backoff, send_then_look
from sprunner.util.killpoints import reached


@dataclass(frozen=True)
class Started:
    run: Run
    adopted: bool  # True when the run was not started by this apply's own POST
    started_at: float  # epoch seconds, our clock
    # Why the state store could not record the run (it went away after the answer): the
    # run is reported, not waited for, and the next apply adopts it (`_unrecorded`).
    unrecorded: str | None = None


def _unrecorded(run: Run, adopted: bool, started_at: float, error: StateError) -> Started:
    """A run the state could not record: its pending start, durable before the POST, makes
    the next apply adopt it; this apply reports it (SPEC §10: every run is reported)."""
    why = f"run {run.run_id} started but the state could not record it ({error}); "
    return Started(run, adopted, started_at, why + "the next apply adopts it")


def _ours(runs: list[Run], *, known: Collection[str]) -> Run | None:
    """The newest run, when it is none of the runs known before the attempt (newest first:
    every run after a known one in the list is older than it, so not ours either)."""
    if not runs or runs[0].run_id in known:
        return None
    return runs[0]


async def find_started(
    client: ApiClient, collection_id: str, *, name: str, known: Collection[str]
) -> Run | None:
    runs = await client.list_runs(collection_id, name=name)
    return _ours(runs, known=known)


async def start(
    client: ApiClient,
    state: State,
    *,
    name: str,
    collection_id: str,
    fresh: bool = False,
    backoff: Backoff = WRITE_BACKOFF,
    content: str | None = None,
) -> Started:
    """Start one run, recording it before and after; adopt it after an ambiguous failure.

    `fresh`: the collection was created by this apply, so it has no runs yet.
    `content`: the keyed fingerprint the run starts with, recorded with its pending start.
    """
    entry = state.get(name)
    if not fresh and (entry is None or entry.last_run is None):
        # What ran before is unknown (a lost state): learn the newest run first, so that an
        # ambiguous start (now, or after a kill) never takes an older run for its own.
        runs = await client.list_runs(collection_id, name=name)
        if runs:
            newest = runs[0]
            at = newest.created_at or 0.0
            lifecycle.run_seen(state, name, collection_id, newest.run_id, at=at)
            entry = state.get(name)
    known = entry.known_run_ids if entry is not None else set()
    pending = lifecycle.run_pending(state, name, content=content, at=time.time())

    async def send() -> Run:
        return await client.start_run(collection_id, name=name)

    async def look() -> Run | None:
        return await find_started(client, collection_id, name=name, known=known)

    run, adopted = await send_then_look(send, look, backoff)
    reached("run.posted")  # the run started, its id not recorded yet: adopted later
    try:
        lifecycle.run_started(state, name, run.run_id, pending)
    except StateError as error:
        return _unrecorded(run, adopted, pending.started_at, error)
    return Started(run, adopted=adopted, started_at=pending.started_at)


async def adopt_ours(
    client: ApiClient, state: State, *, name: str, collection_id: str
) -> Started | None:
    """The run an interrupted apply left in flight, if any: it was never reported.

    Adopted in progress or completed. A pending start (killed between the POST and its
    answer) is resolved to the run that POST started, when there is one, with the content
    recorded at that start.
    """
    entry = state.get(name)
    inflight = entry.inflight if entry is not None and entry.id == collection_id else None
    if entry is None or inflight is None:
        return None
    if inflight.run_id is not None:
        try:
            run = await client.get_run(collection_id, inflight.run_id, name=name)
        except NotFoundError:
            lifecycle.run_finished(state, name)
            return None
        return Started(run, adopted=True, started_at=inflight.started_at)
    found = await find_started(client, collection_id, name=name, known=entry.known_run_ids)
    if found is None:
        lifecycle.run_finished(state, name)  # that start never ran
        return None
    try:
        lifecycle.run_adopted(state, name, replace(inflight, run_id=found.run_id))
    except StateError as error:
        return _unrecorded(found, True, inflight.started_at, error)
    return Started(found, adopted=True, started_at=inflight.started_at)


async def adopt_running(
    client: ApiClient, state: State, *, name: str, collection_id: str
) -> Started | None:
    """With `overlap: skip`: a run already in progress remotely, started by anyone."""
    running = await client.list_runs(collection_id, status="in_progress", name=name)
    if not running:
        return None
    run = running[0]
    since = run.created_at if run.created_at is not None else time.time()
    record = lifecycle.run_joined(state, name, run.run_id, at=since)
    return Started(run, adopted=True, started_at=record.started_at)


def finish(state: State, *, name: str) -> None:
    """The run was seen to its end (completed or given up on): it is no longer in flight."""
    lifecycle.run_finished(state, name)
    reached("run.finished")


async def last_run_time(
    client: ApiClient, state: State, *, name: str, collection_id: str
) -> float | None:
    """When the newest run of a collection started: from the state, else from the API."""
    entry = state.get(name)
    if entry is not None and entry.last_run is not None:
        return entry.last_run.started_at
    runs = await client.list_runs(collection_id, name=name)
    return next((r.created_at for r in runs if r.created_at is not None), None)
