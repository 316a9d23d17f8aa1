"""The state directory: `state.db` (SQLite, WAL), and the OS lock that serialises applies.

- `state.db` holds the schema of `schema.py`, in WAL mode: readers (`plan`, `status`,
  `state export`, a test watching an apply) never block the apply that writes, and never
  see half a change. Every change is committed at once, into the WAL (a kill -9 keeps it).
  A durable one is fsynced before the call returns (synchronous=FULL); the others
  (NORMAL) are in the WAL, which is written in order, so the next FULL commit's fsync
  makes them durable too. Only what an outside effect depends on is durable (a create or
  a run start marked before its POST, a PUT, a publication: `lifecycle.py`), about two
  fsyncs a collection; each costs a fraction of a millisecond here (bench/README.md).
- No file of the state is renamed or unlinked by sprunner after the migration, so no
  directory fsync is owed but the migration's (migrate.py).
- `lock`: an OS file lock (filelock: flock), released by the kernel when the process
  dies, so there are never stale locks. It covers every collection, so `try_lock` always
  succeeds.
- A directory in the format before the store (state.json, journal.jsonl, applied/) is
  migrated on the first open under the lock, the old files kept aside (`migrate.py`); an
  open without the lock (plan, status, export) reads them into memory and writes nothing.

Entries are kept per API URL: ids from one deployment mean nothing to another.
No secret is ever written here: fingerprints and digests are keyed one-way hashes.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sprunner.errors import LockHeldError, StateDirectoryError, StateError
from sprunner.state import migrate, schema
from sprunner.state.store import StateStore

DB_NAME = "state.db"
BUSY_TIMEOUT_MS = 10_000  # a reader's WAL recovery or checkpoint: never long
SCHEMA_MADE = "SELECT name FROM sqlite_master WHERE name = 'sprunner_schema'"


class State(StateStore):
    """The state directory's entries and values of one API URL."""

    def __init__(
        self, directory: Path, api_url: str, *, key: str | None = None, persist: bool = True
    ) -> None:
        super().__init__(api_url, key=key)
        self.directory = directory
        self.path = directory / DB_NAME
        self._mutex = threading.RLock()  # the results drain writes from worker threads too
        self._full: bool | None = None  # the connection's synchronous setting
        try:
            self._connection = self._open(persist)
        except sqlite3.Error as e:
            raise self._error("open", e) from e
        self._load()

    def _error(self, verb: str, error: BaseException) -> StateError:
        return StateError(f"cannot {verb} the state in {self.path}: {error}")

    def _open(self, persist: bool) -> sqlite3.Connection:
        legacy = migrate.legacy_files(self.directory)
        if not persist and self.path.exists():
            connection = self._connect(f"file:{self.path}?mode=ro", uri=True)
            if connection.execute(SCHEMA_MADE).fetchall():
                return connection
            connection.close()  # being made by the first open under the lock: not yet there
        if persist:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StateDirectoryError.cannot("create", self.directory, e) from e
        # Without `persist` and no database yet (plan, status, export): an empty one in
        # memory, with a directory of the older format read into it; nothing is written.
        self._connection = self._connect(str(self.path) if persist else ":memory:")
        if persist:
            self._connection.execute("PRAGMA journal_mode=WAL")
        with self.batch():
            # The older files are read in when the database is new, in the same transaction:
            # a kill leaves them where they were and no schema version.
            fresh = not self._execute(SCHEMA_MADE)
            schema.prepare(self._execute)
            if fresh and legacy:
                self.restore(migrate.read(self.directory))
        if persist and legacy:  # imported now, or by a migration killed before this step
            migrate.set_aside(self.directory, legacy)
        return self._connection

    def _connect(self, target: str, *, uri: bool = False) -> sqlite3.Connection:
        connection = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return connection

    # -- the engine ------------------------------------------------------------------------
    def _run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, params).fetchall()

    def _synchronous(self, full: bool) -> None:
        if self._full is not full:
            self._connection.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._full = full

    def _execute(
        self, sql: str, params: Sequence[Any] = (), *, durable: bool | None = None
    ) -> list[tuple[Any, ...]]:
        try:
            with self._mutex:
                if durable is not None and not self._connection.in_transaction:
                    self._synchronous(durable)  # a batch's transaction has its own
                return self._run(sql, params)
        except sqlite3.Error as e:
            raise self._error("read" if durable is None else "write", e) from e

    @contextlib.contextmanager
    def _transaction(self, durable: bool) -> Iterator[None]:
        # The mutex held throughout: a results drain's thread never writes into another's
        # transaction (its change would go with a rollback).
        with self._mutex:
            try:
                self._synchronous(durable)
                self._connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise self._error("write", e) from e
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._connection.execute("ROLLBACK")
                raise
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as e:
                raise self._error("write", e) from e

    def close(self) -> None:
        """Closing the last connection checkpoints the WAL into the database, fsynced."""
        try:
            super().close()
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()


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
