"""What every state engine offers: the entries and values of one API URL, in one schema.

The engines (`sqlite.State`, the default, and `postgres.PostgresState`) run the same SQL
(`schema.py`) and differ only in connecting, durability and locking. Each keeps the
entries and values of its API URL in memory, read once when opened, and writes every
change through to the database before returning: the caller may rely on it at once.

Durability: every change is committed when the call returns (a kill -9 keeps it). One made
`durable=True` is also on the disk by then (SQLite: synchronous=FULL; PostgreSQL: a
synchronous commit). One made `durable=False` reaches the disk with the next durable
commit, which comes before any later outside effect that depends on it (SPEC section 10):
lifecycle.py says which is which. `batch()` puts several changes in one transaction.

Locks: the SQLite state is guarded by one OS lock for a whole apply, so `try_lock` always
succeeds; PostgreSQL takes an advisory lock per collection (`try_lock(name)`).

Fingerprints are keyed (`hashing.py`): the store is opened with the API key (`key=`), or
without it for tools that only copy the state (export, import), which cannot fingerprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from sprunner.errors import EXIT_API_UNUSABLE, StateError
from sprunner.state import schema
from sprunner.state.hashing import Hasher
from sprunner.state.model import Entry, LockHolder, entry_from_json, entry_to_json

if TYPE_CHECKING:
    from sprunner.jobfile.model import DesiredCollection

ENTRY_COLUMNS = ", ".join(schema.COLUMNS)


class StateConnectionLost(StateError):
    """The state database cannot be reached any more: the locks this apply held are gone,
    so nothing new may be started; runs already started may still be waited for.

    Exit code 3 when it ends the command (nothing could be done), like an unusable API."""

    exit_code: ClassVar[int] = EXIT_API_UNUSABLE


class StateStore(ABC):
    """The entries and values of one API URL, every change written through."""

    def __init__(self, api_url: str, *, key: str | None) -> None:
        self.api_url = api_url
        self._hasher = None if key is None else Hasher.from_api_key(key)
        self._entries: dict[str, Entry] = {}
        self._values: dict[str, dict[str, Any]] = {}
        # Applied collections whose display-only digests are still to be written (`settle`).
        self._unsaved: dict[str, DesiredCollection] = {}
        self._batched = False

    # -- what the engines provide ----------------------------------------------------------
    @abstractmethod
    def _execute(
        self, sql: str, params: Sequence[Any] = (), *, durable: bool | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement: a change is committed on return (durable when asked), unless
        in a batch; `durable` None: a read, or a statement of a batch."""

    @abstractmethod
    def _transaction(self, durable: bool) -> contextlib.AbstractContextManager[None]:
        """A transaction, committed (durable when asked) when the block ends cleanly."""

    def close(self) -> None:
        """Write what was kept for later, release every lock and the connection."""
        with contextlib.suppress(StateError):  # display only: never fails a command
            made = {n: self.hasher.request_digests(c, keep=False) for n, c in self._unsaved.items()}
            self._save_digests(made)

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

    # -- reading ---------------------------------------------------------------------------
    def _load(self, name: str | None = None) -> None:
        """Read the entries and values of this API URL (or of one collection) again."""
        where, params = (" AND name = ?", (self.api_url, name)) if name else ("", (self.api_url,))
        rows = self._execute(schema.SELECT_ENTRIES + where, params)
        values = self._execute(
            "SELECT name, kind, value FROM sprunner_values WHERE api_url = ?" + where, params
        )
        entries = {row[0]: schema.entry_of(row[1:], self._hasher) for row in rows}
        found: dict[str, dict[str, Any]] = {}
        for key, kind, value in values:
            found.setdefault(key, {})[kind] = json.loads(value)
        if name is None:
            self._entries, self._values = entries, found
            return
        self._entries.pop(name, None)
        self._entries.update(entries)
        self._values[name] = found.get(name, {})

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def entries(self) -> Mapping[str, Entry]:
        return dict(self._entries)

    def get_blob(self, name: str, kind: str) -> Any:
        """A per-collection JSON value that another module defines (`kind` names it: the
        results checkpoints, the retry ledger, the latest verdict); None when absent."""
        return self._values.get(name, {}).get(kind)

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self, *, durable: bool = True) -> Iterator[None]:
        """Several changes in one commit, all or none (a batch inside a batch is its part)."""
        if self._batched:
            yield
            return
        self._batched = True
        try:
            with self._transaction(durable):
                yield
        except BaseException:
            with contextlib.suppress(StateError):
                self._load()  # what the database kept, not what the rolled-back changes said
            raise
        finally:
            self._batched = False

    def _write(
        self, durable: bool, sql: str, params: Sequence[Any], *, required: bool = False
    ) -> None:
        # A change nothing relies on yet stays in memory after a lost connection: the next
        # apply, finding the run still in flight, adopts it. A `required` one raises.
        lost_ok = not durable and not required
        with contextlib.suppress(*((StateConnectionLost,) if lost_ok else ())):
            self._execute(sql, params, durable=durable)

    def update(
        self, name: str, *, durable: bool = True, required: bool = False, **changes: Any
    ) -> Entry:
        """Change some fields of an entry (or create it when `id` is given). Called by the
        lifecycle's transitions (lifecycle.py), which say what each change means.
        `required` (with `durable=False`): committed, not synced, but a store that went
        away raises instead of leaving the change in memory.

        A new `id` drops the run records of the old one (unless given with it): they are no
        runs of the new collection."""
        current = self._entries.get(name)
        if current is not None and changes.get("id", current.id) != current.id:
            # Another collection under this name (created again after someone deleted it):
            # kept, a pending start would make the next apply adopt the new collection's
            # newest run, anyone's, as its own.
            changes = {"inflight": None, "last_run": None, **changes}
        entry = Entry(**changes) if current is None else replace(current, **changes)
        row = (self.api_url, name, *schema.entry_row(entry))
        self._write(durable, schema.UPSERT_ENTRY, row, required=required)
        self._entries[name] = entry
        return entry

    def forget(self, name: str) -> None:
        """Drop the entry (its values stay: a create's generation outlives the collection)."""
        sql = "DELETE FROM sprunner_collections WHERE api_url = ? AND name = ?"
        self._write(True, sql, (self.api_url, name))
        self._entries.pop(name, None)

    def put_blob(self, name: str, kind: str, value: Any, *, durable: bool = True) -> None:
        """Replace (or with None remove) a per-collection JSON value."""
        if value is None:
            sql = "DELETE FROM sprunner_values WHERE api_url = ? AND name = ? AND kind = ?"
            self._write(durable, sql, (self.api_url, name, kind))
            self._values.get(name, {}).pop(kind, None)
            return
        self._write(durable, schema.UPSERT_VALUE, (self.api_url, name, kind, schema.dumps(value)))
        self._values.setdefault(name, {})[kind] = value

    # -- what was applied, request by request (display only) ------------------------------
    def record_applied(self, collection: DesiredCollection) -> None:
        """Keep the collection's request digests for `settle` (or `close`): made amid the
        calls, they would cost CPU on the calls' path; nothing relies on them."""
        self._unsaved[collection.name] = collection

    async def settle(self) -> None:
        """Make and write the digests kept so far, letting the event loop serve the polls
        between collections: called once every collection is reconciled."""
        made: dict[str, tuple[str, ...]] = {}
        for name, collection in list(self._unsaved.items()):
            made[name] = self.hasher.request_digests(collection, keep=False)
            await asyncio.sleep(0)
        with contextlib.suppress(StateError):  # `close` tries again
            self._save_digests(made)
            for name in made:
                self._unsaved.pop(name, None)

    def save_applied(self, name: str, digests: Sequence[str]) -> None:
        self._save_digests({name: tuple(digests)})

    def _save_digests(self, by_name: Mapping[str, Sequence[str]]) -> None:
        if not by_name:
            return
        with self.batch(durable=False):
            for name, digests in by_name.items():
                params = (self.api_url, name, self.hasher.key_id, "\n".join(digests))
                self._execute(schema.UPSERT_DIGESTS, params, durable=False)

    def load_applied(self, name: str) -> list[str] | None:
        rows = self._execute(
            "SELECT key_id, digests FROM sprunner_digests WHERE api_url = ? AND name = ?",
            (self.api_url, name),
        )
        if not rows or self._hasher is None or rows[0][0] != self._hasher.key_id:
            return None  # unknown, or made under another key: not comparable
        return str(rows[0][1]).split()

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

        After True, `get(name)` is fresh (a shared engine reads it again): plan that
        collection again from it. Taking a lock this apply already holds returns True."""
        return True

    def unlock(self, name: str) -> None:
        """Release `name`'s lock (held until the run waited for is done)."""
        return None

    def holder(self, name: str) -> LockHolder | None:
        """Who holds `name`'s lock, when a live apply does."""
        return None

    # -- export and import ----------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Everything, for every API URL, as the export document's `apis` value."""
        apis: dict[str, Any] = {}

        def part(api_url: str) -> dict[str, Any]:
            empty: dict[str, Any] = {"entries": {}, "applied": {}, "blobs": {}}
            found: dict[str, Any] = apis.setdefault(api_url, empty)
            return found

        order = " ORDER BY api_url, name"
        for row in self._execute(
            f"SELECT api_url, name, {ENTRY_COLUMNS} FROM sprunner_collections" + order
        ):
            part(row[0])["entries"][row[1]] = entry_to_json(schema.entry_of(row[2:], None))
        for api, name, key_id, digests in self._execute(
            "SELECT api_url, name, key_id, digests FROM sprunner_digests" + order
        ):
            part(api)["applied"][name] = {"key_id": key_id, "digests": str(digests).split()}
        for api, name, kind, value in self._execute(
            "SELECT api_url, name, kind, value FROM sprunner_values" + order + ", kind"
        ):
            part(api)["blobs"].setdefault(name, {})[kind] = json.loads(value)
        return dict(sorted(apis.items()))

    def restore(self, apis: Mapping[str, Any]) -> None:
        """Merge an export document's `apis` value in, in one transaction (imported names
        win)."""
        with self.batch():
            for api_url, part in apis.items():
                for name, value in part.get("entries", {}).items():
                    row = schema.entry_row(entry_from_json(value))
                    self._execute(schema.UPSERT_ENTRY, (api_url, name, *row))
                for name, applied in part.get("applied", {}).items():
                    row = (api_url, name, applied["key_id"], "\n".join(applied["digests"]))
                    self._execute(schema.UPSERT_DIGESTS, row)
                for name, kinds in part.get("blobs", {}).items():
                    for kind, value in kinds.items():
                        row = (api_url, name, kind, schema.dumps(value))
                        self._execute(schema.UPSERT_VALUE, row)
        self._load()
