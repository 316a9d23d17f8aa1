"""The state in PostgreSQL (`--state-url`), shared by every host that applies.

The tables are `schema.py`'s, made (and upgraded from version 1) under a migration lock,
so any number of hosts may start at once on a fresh database.

Invariants:
- autocommit: each change is committed, synchronously, before the call returns;
- per-collection locks are session-level advisory locks (`pg_try_advisory_lock`) keyed
  by a stable 64-bit hash of the API URL and the name: the server releases them when the
  session ends, so a killed apply leaves no stale lock. The holder's row
  (`sprunner_holders`) is written in the transaction that takes the lock, with the
  session's backend pid; it is shown only while `pg_locks` says that session holds the
  lock, so an apply that has exited is never named;
- a lost connection means the locks are gone: every later call raises
  StateConnectionLost, and the caller must start nothing new;
- the URL's password never appears in a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sprunner.errors import StateError, UsageError
from sprunner.state import schema
from sprunner.state.model import LockHolder
from sprunner.state.store import StateConnectionLost, StateStore
from sprunner.util.redact import url_without_password

if TYPE_CHECKING:
    from types import ModuleType

    import psycopg

# Held for the migration transaction only: several pods may start on a fresh database.
MIGRATION_LOCK = int.from_bytes(
    hashlib.sha256(b"sprunner migrate").digest()[:8], "big", signed=True
)
HOLDER = (
    "SELECT h.apply_id, h.host, h.pid FROM sprunner_holders h JOIN pg_locks l "
    "ON l.locktype = 'advisory' AND l.granted AND l.pid = h.backend AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = ? AND l.objid::bigint = ? WHERE h.api_url = ? AND h.name = ?"
)


def _psycopg() -> ModuleType:
    try:
        import psycopg
    except ImportError:
        raise UsageError(
            "--state-url needs the postgres extra: pip install 'sprunner[postgres]'"
        ) from None
    return psycopg


def redacted(url: str) -> str:
    """The URL without its password (user-info or `?password=`), for messages: the one
    function for it (`redact.url_without_password`)."""
    return url_without_password(url)


def lock_key(api_url: str, name: str) -> int:
    """A stable signed 64-bit advisory lock key for one collection of one API."""
    digest = hashlib.sha256(f"sprunner collection\n{api_url}\n{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresState(StateStore):
    """The entries and values of one API URL in PostgreSQL, with per-collection locks."""

    def __init__(
        self, connection: psycopg.Connection[Any], api_url: str, *, key: str | None, url: str
    ) -> None:
        super().__init__(api_url, key=key)
        self._connection = connection
        self._where = redacted(url)
        self._lost = False
        self._held: dict[str, str] = {}  # name -> apply id
        with self.batch():
            self._execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            schema.prepare(self._execute)
        self._load()

    @classmethod
    def connect(cls, url: str, api_url: str, *, key: str | None) -> PostgresState:
        psycopg = _psycopg()
        try:
            connection = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=10,
                application_name="sprunner",
                # Notice a dead server or network within about a minute, not hours.
                keepalives=1,
                keepalives_idle=20,
                keepalives_interval=10,
                keepalives_count=3,
            )
        except psycopg.Error as e:
            raise StateConnectionLost(
                f"cannot connect to the state database {redacted(url)}: {e}"
            ) from e
        try:
            return cls(connection, api_url, key=key, url=url)
        except BaseException as e:
            connection.close()
            if isinstance(e, StateError) and not isinstance(e, StateConnectionLost):
                raise StateError(f"cannot prepare the state database {redacted(url)}: {e}") from e
            raise

    # -- the engine ------------------------------------------------------------------------
    def _execute(
        self, sql: str, params: Sequence[Any] = (), *, durable: bool | None = None
    ) -> list[tuple[Any, ...]]:
        psycopg = _psycopg()
        if self._lost:
            raise StateConnectionLost(f"the connection to the state database {self._where} is lost")
        try:
            cursor = self._connection.execute(sql.replace("?", "%s"), tuple(params))
            return cursor.fetchall() if cursor.description else []
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            self._lost = True
            raise StateConnectionLost(
                f"lost the connection to the state database {self._where}: {e}"
            ) from e
        except psycopg.Error as e:
            raise StateError(f"the state database {self._where} refused a change: {e}") from e

    @contextlib.contextmanager
    def _transaction(self, durable: bool) -> Iterator[None]:
        psycopg = _psycopg()
        try:
            with self._connection.transaction():
                yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            self._lost = True
            raise StateConnectionLost(
                f"lost the connection to the state database {self._where}: {e}"
            ) from e

    # -- per-collection locks --------------------------------------------------------------
    @property
    def shared(self) -> bool:
        return True

    @property
    def lost(self) -> bool:
        return self._lost

    def try_lock(self, name: str, *, apply_id: str) -> bool:
        if name in self._held:
            return True
        key = lock_key(self.api_url, name)
        # The lock and its holder's row in one transaction. An advisory lock outlives a
        # rolled-back transaction, so a failed row gives the lock back.
        try:
            with self.batch():
                if not self._execute("SELECT pg_try_advisory_lock(?)", (key,))[0][0]:
                    return False
                self._held[name] = apply_id
                self._execute(
                    "INSERT INTO sprunner_holders (api_url, name, apply_id, host, pid, "
                    "backend, since) VALUES (?, ?, ?, ?, ?, pg_backend_pid(), ?) "
                    "ON CONFLICT (api_url, name) DO UPDATE SET apply_id = excluded.apply_id, "
                    "host = excluded.host, pid = excluded.pid, backend = excluded.backend, "
                    "since = excluded.since",
                    (self.api_url, name, apply_id, socket.gethostname(), os.getpid(), time.time()),
                )
        except StateError:
            if self._held.pop(name, None) is not None and not self._lost:
                with contextlib.suppress(StateError):
                    self._execute("SELECT pg_advisory_unlock(?)", (key,))
            raise
        self._load(name)
        return True

    def unlock(self, name: str) -> None:
        if self._held.pop(name, None) is None:
            return
        with self.batch():
            self._execute(
                "DELETE FROM sprunner_holders WHERE api_url = ? AND name = ? "
                "AND backend = pg_backend_pid()",
                (self.api_url, name),
            )
            self._execute("SELECT pg_advisory_unlock(?)", (lock_key(self.api_url, name),))

    def holder(self, name: str) -> LockHolder | None:
        unsigned = lock_key(self.api_url, name) & (2**64 - 1)
        params = (unsigned >> 32, unsigned & (2**32 - 1), self.api_url, name)
        rows = self._execute(HOLDER, params)
        return LockHolder(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def close(self) -> None:
        """Release every lock (the server does so when the session ends) and disconnect."""
        try:
            if not self._lost:
                super().close()
                for name in list(self._held):
                    try:
                        self.unlock(name)
                    except StateError:
                        break
        finally:
            self._held.clear()
            self._connection.close()
