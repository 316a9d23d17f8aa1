"""Per-collection locks in an apply on a shared state (PostgreSQL): N hosts, one share of work.

With a database state, `apply` opens the state without the whole-state lock, and each
collection's work (create / PUT / delete, the run, the wait) happens under that
collection's advisory lock (`StateStore.try_lock`):

- `claim` takes the lock at the start of the collection's work. Another apply holding it
  means that apply does the work: the collection is `skipped`, "handled by apply <id> on
  <host>" (not a failure). Once taken, the entry is fresh: the collection is planned again
  from it, since another apply may have created, updated or run it after this apply
  loaded the state and listed the API (never create twice, never run twice);
- `holding` wraps the last phase of each collection (start or adopt, then wait): the lock
  is released when that phase ends, and a collection whose work went through gets a
  `handled` mark naming this apply, so an apply that takes the lock later reports it as
  handled instead of doing it again;
- a lost database connection means the locks are gone: `check` refuses every new change
  (create, PUT, delete; a run start writes the state first and fails on its own), while
  the runs already started are still waited for.

With the directory backend (`StateStore.shared` is False) every method is a no-op: its OS
lock covers the whole apply, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from sprunner.api.client import ApiClient
from sprunner.api.models import CollectionRef
from sprunner.apply.track import Track
from sprunner.errors import StateError
from sprunner.reconcile.plan import PlannedCollection, build_plan
from sprunner.state import Entry, StateConnectionLost, StateStore

# The blob kind of the mark "this apply did this collection's work" (apply id, host, pid).
HANDLED = "handled"

HOLDER_TRIES = 3

Phase = Callable[[int, Track], Awaitable[None]]


class CollectionLocks:
    """The per-collection locks one apply holds, and the re-planning after each claim."""

    def __init__(
        self, state: StateStore, client: ApiClient, *, apply_id: str, runs: bool = True
    ) -> None:
        self.state = state
        self.client = client
        self.apply_id = apply_id
        # `apply --no-run` leaves the runs to others: its work is no reason to skip theirs.
        self.marks = runs
        self.mark = {"apply_id": apply_id, "host": socket.gethostname(), "pid": os.getpid()}
        self._held: set[str] = set()

    @property
    def shared(self) -> bool:
        return self.state.shared

    def check(self) -> None:
        """Raise when the state database is lost: nothing new may be started."""
        if self.state.lost:
            raise StateConnectionLost(
                "the connection to the state database is lost: not changed, "
                "so that no other apply does it twice"
            )

    async def claim(self, track: Track) -> Track:
        """Take the collection's lock; the track to go on with, re-planned from the fresh
        entry, or `skipped` (action and run) when another apply has it or has just done it."""
        item, name = track.item, track.name
        if not self.shared or item.action in ("error", "skip"):
            return track
        # In memory, the entry and the mark are still as loaded before the plan was made:
        # taking the lock re-reads them.
        before, mark_before = self.state.get(name), self.state.get_blob(name, HANDLED)
        if not self.state.try_lock(name, apply_id=self.apply_id):
            return handled(track, f"handled by {await self._holder(name)}")
        self._held.add(name)
        after, mark = self.state.get(name), self.state.get_blob(name, HANDLED)
        if mark != mark_before and _is_mark(mark) and mark["apply_id"] != self.apply_id:
            self.release(name)
            return handled(track, f"handled by apply {mark['apply_id']} on {mark['host']}")
        if after == before:
            return track
        if _ran_since(before, after):
            self.release(name)
            assert after is not None and after.last_run is not None
            reason = f"handled by another apply (run {after.last_run.run_id} started since)"
            return handled(track, reason)
        replanned = await self._replan(item, after)
        if replanned is None:
            self.release(name)
            return handled(track, "handled by another apply (deleted since)")
        return replace(track, item=replanned)

    async def _holder(self, name: str) -> str:
        for _ in range(HOLDER_TRIES):
            holder = self.state.holder(name)
            if holder is not None:
                return str(holder)
            # The lock taken, its row not yet committed (the same transaction), or gone.
            await asyncio.sleep(0.05)
        return "another apply"

    async def _replan(
        self, item: PlannedCollection, after: Entry | None
    ) -> PlannedCollection | None:
        """The plan of one collection from its fresh entry (None: nothing left to do)."""
        if item.action == "delete":
            return item if after is not None and after.id == item.remote_id else None
        assert item.desired is not None
        if item.remote_id is not None:
            ids = [item.remote_id]
        else:
            # Planned as a create from a listing that may predate another apply's create
            # (confirmed or not): the API, asked by name, is the authority.
            listed = await self.client.list_collections(name=item.name)
            ids = [ref.id for ref in listed if ref.name == item.name]
        plan = build_plan(
            [item.desired],
            [CollectionRef(id=i, name=item.name) for i in ids],
            {} if after is None else {item.name: after},
            hasher=self.state.hasher,
            declared=[item.name],
        )
        return replace(plan.items[0], diff=item.diff)

    def holding(self, phase: Phase, current: Callable[[int], Track]) -> Phase:
        """`phase`, then the collection's lock released (marked handled when it went
        through): the last phase of each collection's work."""

        async def held(index: int, track: Track) -> None:
            try:
                await phase(index, track)
            finally:
                self.release(track.name, done=_went_through(current(index)))

        return held

    def release(self, name: str, *, done: bool = False) -> None:
        if name not in self._held:
            return
        self._held.discard(name)
        # The lock dies with a lost session anyway: nothing to release then.
        with contextlib.suppress(StateError):
            if done and self.marks:
                self.state.put_blob(name, HANDLED, self.mark)
            self.state.unlock(name)


def handled(track: Track, reason: str) -> Track:
    """A collection another apply takes care of: skipped, not failed."""
    return replace(track, action="skip", run_state="skipped", run_reason=reason)


def _is_mark(value: Any) -> bool:
    return isinstance(value, dict) and {"apply_id", "host"} <= value.keys()


def _ran_since(before: Entry | None, after: Entry | None) -> bool:
    """A run started by another apply and seen to its end since this apply's plan.

    One still in flight is not: it is adopted (`starter.adopt_ours`), never started again.
    """
    if after is None or after.last_run is None or after.inflight is not None:
        return False
    return before is None or before.last_run != after.last_run


def _went_through(track: Track) -> bool:
    return track.error is None and track.action not in (None, "error", "skip")
