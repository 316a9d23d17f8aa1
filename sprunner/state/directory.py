"""The state directory: what sprunner last applied, and the lock that serialises applies.

The state is a cache, not the truth. Losing it costs at most one PUT per collection (every
fingerprint becomes unknown) and never a duplicate: the remote list decides what exists.

Layout of the directory:

- `state.json`  a snapshot, replaced atomically (temp file, fsync, rename): `version` 2,
  `apis` {api_url: {name: entry}} and `blobs` {api_url: {name: {kind: value}}}. Version 1
  (no blobs, unkeyed fingerprints) is read too: its fingerprints count as unknown;
- `journal.jsonl`  one line per change since the snapshot (`journal.py`), written and
  flushed as soon as it is made (a kill -9 loses nothing the OS has), and fsynced when it
  carries something sprunner relies on: a new id, a pending run start (before the POST), a
  run id. So even a power loss right after a create or a run start keeps the new id.
  Changes that only forget (a run seen to its end) are not fsynced on their own: losing
  one to a power cut makes the next apply adopt that finished run again, as after any
  interruption; the snapshot written at the end of the apply is fsynced. At 200
  collections this halves the fsyncs of an apply (1,000 to 600 measured). Appending a line
  is O(1) where rewriting the snapshot would be O(collections). During an apply the
  durable records are group-committed (`defer_durability`, groupcommit.py): one fsync
  covers every record written before it, awaited (`synced`) before each POST;
- `applied/`  the request digests each collection last applied, so `plan` can tell
  requests added, removed and changed: display only (applied.py). During an apply they are
  kept, made while the last runs go on (`settle`) and written by its end;
- `lock`  an OS file lock (flock): released by the kernel when the process dies, so there
  are never stale locks. It covers every collection, so `try_lock` always succeeds.

Entries are kept per API URL: ids from one deployment mean nothing to another.
No secret is ever written here: fingerprints and digests are keyed one-way hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sprunner.atomic import write_atomically
from sprunner.errors import LockHeldError, StateDirectoryError, StateError
from sprunner.jobfile.model import DesiredCollection
from sprunner.state import journal
from sprunner.state.applied import AppliedFiles
from sprunner.state.base import StateStore
from sprunner.state.groupcommit import Deferred
from sprunner.state.model import Entry, entry_from_json, entry_to_json

STATE_VERSION = 2
# Request digests of applied/ files kept in memory during an apply before they are written.
MAX_PENDING_DIGESTS = 200_000
READABLE_VERSIONS = (1, 2)


class State(StateStore):
    """The state directory's entries of one API URL, every change journaled first."""

    def __init__(
        self, directory: Path, api_url: str, *, key: str | None = None, persist: bool = True
    ) -> None:
        super().__init__(api_url, key=key)
        self.directory = directory
        self.persist = persist
        self._all: dict[str, dict[str, Any]] = {}  # api_url -> name -> entry json
        self._blobs: dict[str, dict[str, dict[str, Any]]] = {}  # api_url -> name -> kind -> v
        self._deferred: Deferred | None = None  # group commit, while an apply runs
        self._appender: journal.Appender | None = None  # the journal, open during group commit
        # applied/ files kept during group commit (name -> digests, or the collection whose
        # digests are yet to be made), and their digest count.
        self._pending_applied: dict[str, tuple[str, ...] | DesiredCollection] = {}
        self._pending_digests = 0
        self._applied = AppliedFiles(directory / "applied")
        self._load()

    @property
    def snapshot_path(self) -> Path:
        return self.directory / "state.json"

    @property
    def journal_path(self) -> Path:
        return self.directory / "journal.jsonl"

    def _error(self, verb: str, error: BaseException) -> StateError:
        return StateError(f"cannot {verb} the state in {self.directory}: {error}")

    # -- reading ---------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            version = self._load_snapshot()
            if self.journal_path.exists():
                for record in journal.records(self.journal_path):
                    self._replay(record)
            self._entries = {
                name: entry_from_json(value, self._hasher)
                for name, value in self._all.get(self.api_url, {}).items()
            }
            if self.persist and self._hasher is not None and version != STATE_VERSION:
                self._applied.drop_unkeyed()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise self._error("read", e) from e

    def _load_snapshot(self) -> int | None:
        if not self.snapshot_path.exists():
            return None
        data = json.loads(self.snapshot_path.read_text(encoding="utf-8"))
        version = data.get("version")
        if version not in READABLE_VERSIONS:
            raise StateError(
                f"{self.snapshot_path}: state version {version!r} is not one of "
                f"{READABLE_VERSIONS}; move the directory aside to start afresh"
            )
        self._all = data.get("apis", {})
        self._blobs = data.get("blobs", {})
        return int(version)

    def _replay(self, record: Mapping[str, Any]) -> None:
        api, name = record["api"], record["name"]
        if "blob" in record:
            kinds = self._blobs.setdefault(api, {}).setdefault(name, {})
            if record.get("value") is None:
                kinds.pop(record["blob"], None)
            else:
                kinds[record["blob"]] = record["value"]
            return
        names = self._all.setdefault(api, {})
        if record["entry"] is None:
            names.pop(name, None)
        else:
            names[name] = record["entry"]

    # -- writing ---------------------------------------------------------------------------
    def _append(self, record: dict[str, Any], *, durable: bool) -> None:
        if not self.persist:
            return
        deferred = self._deferred
        try:
            if deferred is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                journal.append(self.journal_path, record, durable=durable)
            else:
                # Group commit: the journal stays open for the apply (closed when it ends).
                if self._appender is None:
                    self.directory.mkdir(parents=True, exist_ok=True)
                    self._appender = journal.Appender(self.journal_path)
                self._appender.append(record, durable=False)
        except OSError as e:
            raise self._error("write", e) from e
        if durable and deferred is not None:
            deferred.wrote()  # on the disk with the next `synced()` (groupcommit.py)

    def defer_durability(self, on: bool) -> None:
        """Group commit on or off; turning it off first fsyncs what is pending."""
        if on and self._deferred is None and self.persist:
            self._deferred = Deferred(self.journal_path)
        elif not on and self._deferred is not None:
            try:
                self.sync_blocking()
                self._write_pending()
            finally:
                self._deferred = None
                self._pending_applied, self._pending_digests = {}, 0
                if self._appender is not None:
                    self._appender.close()
                    self._appender = None

    async def synced(self) -> None:
        if self._deferred is not None:
            try:
                await self._deferred.sync()
            except OSError as e:
                raise self._error("write", e) from e

    def sync_blocking(self) -> None:
        if self._deferred is not None:
            try:
                self._deferred.sync_blocking()
            except OSError as e:
                raise self._error("write", e) from e

    def _write_entry(self, name: str, entry: Entry | None, *, durable: bool) -> None:
        value = None if entry is None else entry_to_json(entry)
        self._append({"api": self.api_url, "name": name, "entry": value}, durable=durable)
        names = self._all.setdefault(self.api_url, {})
        if value is None:
            names.pop(name, None)
        else:
            names[name] = value

    def get_blob(self, name: str, kind: str) -> Any:
        return self._blobs.get(self.api_url, {}).get(name, {}).get(kind)

    def put_blob(self, name: str, kind: str, value: Any, *, durable: bool = True) -> None:
        record = {"api": self.api_url, "name": name, "blob": kind, "value": value}
        self._append(record, durable=durable)
        self._replay(record)

    def compact(self) -> None:
        """Fold the journal into a new snapshot. Crash-safe in any order of events."""
        if not self.persist:
            return
        if self._appender is not None:  # the journal is about to go: append to a new one
            self._appender.close()
            self._appender = None
        document = {"version": STATE_VERSION, "apis": self._all, "blobs": self._blobs}
        text = json.dumps(document, indent=1, sort_keys=True)
        try:
            write_atomically(self.snapshot_path, text + "\n")
            # Replaying an already-folded journal is harmless, so truncating last is safe.
            self.journal_path.unlink(missing_ok=True)
        except OSError as e:
            raise self._error("write", e) from e

    # -- what was applied, request by request ---------------------------------------------
    def save_applied(self, name: str, digests: Iterable[str]) -> None:
        if self._deferred is None:
            self._save_applied({(self.api_url, name): (self.hasher.key_id, digests)})
        else:
            self._keep_applied(name, tuple(digests))

    def record_applied(self, collection: DesiredCollection) -> None:
        if self._deferred is None:
            super().record_applied(collection)
        else:  # its digests are made later, off the calls' path too (`settle`)
            self._keep_applied(collection.name, collection)

    def _keep_applied(self, name: str, item: tuple[str, ...] | DesiredCollection) -> None:
        # During an apply these display-only digests are kept, then made once every
        # collection is reconciled (`settle`) and written by the end of the apply, or early
        # when many digests are held (a collection held costs nothing: the plan has it).
        # Made and written amid the calls, they cost CPU; in a worker thread, more in GIL
        # hand-offs.
        self._pending_applied[name] = item
        if not isinstance(item, DesiredCollection):
            self._held(len(item))

    def _held(self, digests: int) -> None:
        self._pending_digests += digests
        if self._pending_digests > MAX_PENDING_DIGESTS:
            self._write_pending()

    async def settle(self) -> None:
        # Each collection's digests, letting the event loop serve the polls in between;
        # then one write. A failure leaves everything pending: the end writes it again.
        with contextlib.suppress(StateError):
            for name in list(self._pending_applied):
                item = self._pending_applied.get(name)
                if isinstance(item, DesiredCollection):
                    made = self._pending_applied[name] = self.hasher.request_digests(
                        item, keep=False
                    )
                    self._held(len(made))
                    await asyncio.sleep(0)
            self._write_pending()

    def _write_pending(self) -> None:
        """Write the digests kept during the apply; raise the first failure (then they
        stay pending)."""
        key_id, hasher = self.hasher.key_id, self.hasher
        entries = {
            (self.api_url, name): (
                key_id,
                hasher.request_digests(item, keep=False)
                if isinstance(item, DesiredCollection)
                else item,
            )
            for name, item in self._pending_applied.items()
        }
        self._save_applied(entries)
        self._pending_applied, self._pending_digests = {}, 0

    def _save_applied(self, entries: Mapping[tuple[str, str], tuple[str, Iterable[str]]]) -> None:
        if not self.persist or not entries:
            return
        try:
            self._applied.write(entries)
        except OSError as e:
            raise self._error("write", e) from e

    def load_applied(self, name: str) -> list[str] | None:
        found = self._read_applied(self.api_url, name)
        if found is None or self._hasher is None or found[0] != self._hasher.key_id:
            return None  # unknown, or made under another key: not comparable
        return found[1]

    def _read_applied(self, api_url: str, name: str) -> tuple[str, list[str]] | None:
        try:
            return self._applied.read(api_url, name)
        except OSError as e:
            raise self._error("read", e) from e

    # -- export and import ----------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        apis: dict[str, Any] = {}
        for api_url in sorted(set(self._all) | set(self._blobs)):
            names = self._all.get(api_url, {})
            applied = {}
            for name in sorted(names):
                found = self._read_applied(api_url, name)
                if found is not None:
                    applied[name] = {"key_id": found[0], "digests": found[1]}
            apis[api_url] = {
                "entries": {name: names[name] for name in sorted(names)},
                "applied": applied,
                "blobs": self._blobs.get(api_url, {}),
            }
        return apis

    def restore(self, apis: Mapping[str, Any]) -> None:
        for api_url, part in apis.items():
            for name, value in part.get("entries", {}).items():
                record = {"api": api_url, "name": name, "entry": value}
                self._append(record, durable=False)
                self._replay(record)
            for name, kinds in part.get("blobs", {}).items():
                for kind, value in kinds.items():
                    record = {"api": api_url, "name": name, "blob": kind, "value": value}
                    self._append(record, durable=False)
                    self._replay(record)
            self._save_applied(
                {
                    (api_url, name): (applied["key_id"], applied["digests"])
                    for name, applied in part.get("applied", {}).items()
                }
            )
        self._entries = {
            name: entry_from_json(value, self._hasher)
            for name, value in self._all.get(self.api_url, {}).items()
        }
        self.compact()


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the apply lock on `directory`, or raise LockHeldError at once.

    A directory that cannot hold the lock (read-only, under a file, a `lock` that is a
    directory) is a StateError naming the path, never a traceback.
    """
    from filelock import FileLock, Timeout

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StateDirectoryError.cannot("create", directory, e) from e
    lock = FileLock(str(directory / "lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise LockHeldError(
            f"another sprunner apply holds the lock on {directory}; "
            "it is released when that process ends"
        ) from None
    except OSError as e:
        raise StateDirectoryError.cannot("lock", directory, e) from e
    try:
        yield
    finally:
        lock.release()
