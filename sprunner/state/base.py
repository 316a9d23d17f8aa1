"""What every state backend offers: the entries of one API URL, changed one at a time.

Backends (`directory.State`, `postgres.PostgresState`) keep the entries in memory and make
each change durable before returning from `update`/`forget`: the caller may rely on it at
once (a new id, a pending run start, a run id). They differ in how they persist and lock:

- the state directory is guarded by one OS lock for the whole apply, so `try_lock` always
  succeeds and `holder` knows nobody;
- PostgreSQL takes a session-level advisory lock per collection: `try_lock(name)` says
  whether this apply may touch the collection; the server releases the locks when the
  session dies, so a killed apply leaves no stale lock.

Fingerprints are keyed (`hashing.py`): the store is opened with the API key (`key=`), or
without it for tools that only copy the state (export, import), which cannot fingerprint.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from sprunner.errors import EXIT_API_UNUSABLE, StateError
from sprunner.state.hashing import Hasher
from sprunner.state.model import Entry, LockHolder

if TYPE_CHECKING:
    from sprunner.jobfile.model import DesiredCollection


class StateConnectionLost(StateError):
    """The state database cannot be reached any more: the locks this apply held are gone,
    so nothing new may be started; runs already started may still be waited for.

    Exit code 3 when it ends the command (nothing could be done), like an unusable API."""

    exit_code: ClassVar[int] = EXIT_API_UNUSABLE


class StateStore(ABC):
    """The entries of one API URL, with every change persisted before it is relied on."""

    def __init__(self, api_url: str, *, key: str | None) -> None:
        self.api_url = api_url
        self._hasher = None if key is None else Hasher.from_api_key(key)
        self._entries: dict[str, Entry] = {}

    # -- keyed content ---------------------------------------------------------------------
    @property
    def hasher(self) -> Hasher:
        if self._hasher is None:
            raise RuntimeError("this state was opened without the API key: it cannot hash")
        return self._hasher

    def fingerprint_of(self, collection: DesiredCollection) -> str:
        return self.hasher.fingerprint(collection)

    def request_digest(self, request: Mapping[str, Any]) -> str:
        return self.hasher.request_digest(request)

    # -- entries ---------------------------------------------------------------------------
    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def entries(self) -> Mapping[str, Entry]:
        return dict(self._entries)

    def update(self, name: str, *, durable: bool = True, **changes: Any) -> Entry:
        """Change some fields of an existing entry (or create it when `id` is given).

        `durable=False` is for changes nothing relies on (a run seen to its end): a backend
        may let them reach the disk with the next durable change. A new `id` drops the run
        records of the old one (unless given with it): they are no runs of the new one.
        """
        current = self._entries.get(name)
        if current is not None and changes.get("id", current.id) != current.id:
            # Another collection under this name (created again after someone deleted it):
            # the runs recorded were the old one's. Kept, a pending start would make the
            # next apply adopt the new collection's newest run, anyone's, as its own.
            changes = {"inflight": None, "last_run": None, **changes}
        entry = Entry(**changes) if current is None else replace(current, **changes)
        self._write_entry(name, entry, durable=durable)
        self._entries[name] = entry
        return entry

    def defer_durability(self, on: bool) -> None:
        """Group commit: while on, a durable change may reach the disk only at the next
        `synced()`, which the caller awaits before relying on it (before a POST). A backend
        whose changes are cheap to make durable one by one ignores it."""
        return None

    async def synced(self) -> None:
        """Return once every change made so far is durable (see `defer_durability`)."""
        return None

    def sync_blocking(self) -> None:
        """`synced()` without an event loop: at the end of an apply or an interruption."""
        return None

    def record_applied(self, collection: DesiredCollection) -> None:
        """`save_applied` of the collection's requests as just created or updated. A backend
        may keep it for later (`settle`, or the end of group commit): it is display only."""
        self.save_applied(collection.name, self.hasher.request_digests(collection, keep=False))

    async def settle(self) -> None:
        """Write, a little at a time, what was kept for the end of the apply: called once
        every collection is reconciled, so the work falls in the wait for the last runs."""
        return None

    def forget(self, name: str) -> None:
        self._write_entry(name, None, durable=True)
        self._entries.pop(name, None)

    def mark_started(self, name: str, collection: DesiredCollection) -> Entry | None:
        """Record that a run started with `collection`'s current content (`when: changed`).

        Call it once a run is known to be ours (its id recorded, or adopted as the run this
        apply or a killed one started); never for an older run adopted under overlap: skip.
        """
        if name not in self._entries:
            return None
        return self.update(name, started_fingerprint=self.fingerprint_of(collection))

    def changed_since_started(self, name: str, collection: DesiredCollection) -> bool:
        """`when: changed`: whether the content differs from the last started run's.
        Unknown (no entry, no record, another key) counts as changed."""
        entry = self._entries.get(name)
        if entry is None or entry.started_fingerprint is None:
            return True
        return entry.started_fingerprint != self.fingerprint_of(collection)

    # -- per-collection locks --------------------------------------------------------------
    @property
    def shared(self) -> bool:
        """Whether other hosts share this state (per-collection locks mean something)."""
        return False

    @property
    def lost(self) -> bool:
        """Whether the connection to a shared state is lost (its locks with it)."""
        return False

    def try_lock(self, name: str, *, apply_id: str) -> bool:
        """Take `name`'s lock for this apply; False when another apply holds it.

        After True, `get(name)` is fresh (a shared backend re-reads it): plan that
        collection again from it. Taking a lock this apply already holds returns True.
        """
        return True

    def unlock(self, name: str) -> None:
        """Release `name`'s lock (held until the run waited for is done)."""
        return None

    def holder(self, name: str) -> LockHolder | None:
        """Who holds `name`'s lock, as far as the backend knows."""
        return None

    def close(self) -> None:
        """Release every lock and connection this store holds."""
        return None

    # -- what the backends provide ---------------------------------------------------------
    @abstractmethod
    def _write_entry(self, name: str, entry: Entry | None, *, durable: bool) -> None: ...

    @abstractmethod
    def compact(self) -> None:
        """Fold pending changes into their lasting form (end of an apply)."""

    @abstractmethod
    def save_applied(self, name: str, digests: Iterable[str]) -> None:
        """The request digests last applied (display only: `plan`'s diff column)."""

    @abstractmethod
    def load_applied(self, name: str) -> list[str] | None: ...

    @abstractmethod
    def get_blob(self, name: str, kind: str) -> Any:
        """A per-collection JSON value that another module defines (`kind` names it),
        e.g. the results high-water mark; None when absent."""

    @abstractmethod
    def put_blob(self, name: str, kind: str, value: Any, *, durable: bool = True) -> None:
        """Replace (or with None remove) a per-collection JSON value; durable on return."""

    @abstractmethod
    def dump(self) -> dict[str, Any]:
        """Everything, for every API URL, as the export document's `apis` value."""

    @abstractmethod
    def restore(self, apis: Mapping[str, Any]) -> None:
        """Merge an export document's `apis` value in (imported names win)."""
