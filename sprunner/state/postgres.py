"""The state in PostgreSQL (`--state-url`), shared by every host that applies.

Tables (created and migrated here; `sprunner_schema` holds the versions applied):
`sprunner_entries` (api_url, name, entry jsonb: the same JSON as the state directory),
`sprunner_applied` (keyed request digests and their key id), `sprunner_blobs` (api_url,
name, kind, value jsonb: per-collection values other modules define) and `sprunner_locks`
(who holds a collection's lock: apply id, host, pid, since).

Invariants:
- autocommit: each change is committed (and, with the server's default
  synchronous_commit, durable) before the call returns, as the journal's fsync is;
- per-collection locks are session-level advisory locks (`pg_try_advisory_lock`) keyed
  by a stable 64-bit hash of the API URL and the name: the server releases them when the
  session ends, so a killed apply leaves no stale lock. The `sprunner_locks` row only
  names the holder for messages; a row left by a killed apply is overwritten by the next;
- a lost connection means the locks are gone: every later call raises
  StateConnectionLost, and the caller must start nothing new;
- the URL's password never appears in a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sprunner.errors import StateError, UsageError
from sprunner.redact import url_without_password
from sprunner.state.base import StateConnectionLost, StateStore
from sprunner.state.model import Entry, LockHolder, entry_from_json, entry_to_json

if TYPE_CHECKING:
    from types import ModuleType

    import psycopg

# Held for the migration transaction only: several pods may start on a fresh database.
MIGRATION_LOCK = int.from_bytes(
    hashlib.sha256(b"sprunner migrate").digest()[:8], "big", signed=True
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: everything the state directory holds
        """CREATE TABLE sprunner_entries (
            api_url text NOT NULL, name text NOT NULL, entry jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (api_url, name))""",
        """CREATE TABLE sprunner_applied (
            api_url text NOT NULL, name text NOT NULL, key_id text NOT NULL,
            digests text[] NOT NULL, PRIMARY KEY (api_url, name))""",
        """CREATE TABLE sprunner_blobs (
            api_url text NOT NULL, name text NOT NULL, kind text NOT NULL,
            value jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (api_url, name, kind))""",
        """CREATE TABLE sprunner_locks (
            api_url text NOT NULL, name text NOT NULL, apply_id text NOT NULL,
            host text NOT NULL, pid integer NOT NULL,
            since timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (api_url, name))""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


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


def migrate(connection: psycopg.Connection[Any]) -> None:
    """Bring the schema to SCHEMA_VERSION, once, whatever number of hosts start at once."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS sprunner_schema (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = connection.execute("SELECT coalesce(max(version), 0) FROM sprunner_schema")
        current = int(row.fetchone()[0])  # type: ignore[index]
        if current > SCHEMA_VERSION:
            raise StateError(
                f"the state database has schema version {current}, newer than this "
                f"sprunner knows ({SCHEMA_VERSION}): upgrade sprunner"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                connection.execute(statement)
            connection.execute("INSERT INTO sprunner_schema (version) VALUES (%s)", (version,))


class PostgresState(StateStore):
    """The entries of one API URL in PostgreSQL, with per-collection advisory locks."""

    def __init__(
        self, connection: psycopg.Connection[Any], api_url: str, *, key: str | None, url: str
    ) -> None:
        super().__init__(api_url, key=key)
        self._connection = connection
        self._where = redacted(url)
        self._lost = False
        self._held: dict[str, str] = {}  # name -> apply id
        self._blobs: dict[str, dict[str, Any]] = {}
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
            migrate(connection)
        except psycopg.Error as e:
            connection.close()
            raise StateError(f"cannot prepare the state database {redacted(url)}: {e}") from e
        except BaseException:
            connection.close()
            raise
        return cls(connection, api_url, key=key, url=url)

    # -- talking to the server -------------------------------------------------------------
    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        psycopg = _psycopg()
        if self._lost:
            raise StateConnectionLost(f"the connection to the state database {self._where} is lost")
        try:
            cursor = self._connection.execute(sql, tuple(params))
            return cursor.fetchall() if cursor.description else []
        except (psycopg.OperationalError, psycopg.InterfaceError) as e:
            self._lost = True
            raise StateConnectionLost(
                f"lost the connection to the state database {self._where}: {e}"
            ) from e
        except psycopg.Error as e:
            raise StateError(f"the state database {self._where} refused a change: {e}") from e

    def _json(self, value: Any) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value)

    def _load(self) -> None:
        rows = self._rows(
            "SELECT name, entry FROM sprunner_entries WHERE api_url = %s", (self.api_url,)
        )
        self._entries = {name: entry_from_json(value, self._hasher) for name, value in rows}
        self._blobs = {}
        for name, kind, value in self._rows(
            "SELECT name, kind, value FROM sprunner_blobs WHERE api_url = %s", (self.api_url,)
        ):
            self._blobs.setdefault(name, {})[kind] = value

    def _refresh(self, name: str) -> None:
        """Re-read one collection: another apply may have changed it since we loaded."""
        rows = self._rows(
            "SELECT entry FROM sprunner_entries WHERE api_url = %s AND name = %s",
            (self.api_url, name),
        )
        if rows:
            self._entries[name] = entry_from_json(rows[0][0], self._hasher)
        else:
            self._entries.pop(name, None)
        blobs = self._rows(
            "SELECT kind, value FROM sprunner_blobs WHERE api_url = %s AND name = %s",
            (self.api_url, name),
        )
        self._blobs[name] = dict(blobs)

    # -- entries and blobs -----------------------------------------------------------------
    def _write_entry(self, name: str, entry: Entry | None, *, durable: bool) -> None:
        if not durable:
            # Nothing relies on it (a run seen to its end): after a lost connection it stays
            # in memory, and the next apply, finding the run still in flight, adopts it.
            with contextlib.suppress(StateConnectionLost):
                self._write_entry(name, entry, durable=True)
            return
        if entry is None:
            self._rows(
                "DELETE FROM sprunner_entries WHERE api_url = %s AND name = %s",
                (self.api_url, name),
            )
            return
        self._upsert_entry(self.api_url, name, entry_to_json(entry))

    def _upsert_entry(self, api_url: str, name: str, value: Mapping[str, Any]) -> None:
        self._rows(
            "INSERT INTO sprunner_entries (api_url, name, entry) VALUES (%s, %s, %s) "
            "ON CONFLICT (api_url, name) DO UPDATE SET entry = excluded.entry, "
            "updated_at = now()",
            (api_url, name, self._json(value)),
        )

    def get_blob(self, name: str, kind: str) -> Any:
        return self._blobs.get(name, {}).get(kind)

    def put_blob(self, name: str, kind: str, value: Any, *, durable: bool = True) -> None:
        # Non-durable: as `_write_entry`, kept in memory after a lost connection.
        with contextlib.suppress(*(() if durable else (StateConnectionLost,))):
            self._put_blob(self.api_url, name, kind, value)
        kinds = self._blobs.setdefault(name, {})
        if value is None:
            kinds.pop(kind, None)
        else:
            kinds[kind] = value

    def _put_blob(self, api_url: str, name: str, kind: str, value: Any) -> None:
        if value is None:
            self._rows(
                "DELETE FROM sprunner_blobs WHERE api_url = %s AND name = %s AND kind = %s",
                (api_url, name, kind),
            )
            return
        self._rows(
            "INSERT INTO sprunner_blobs (api_url, name, kind, value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (api_url, name, kind) DO UPDATE SET value = excluded.value, "
            "updated_at = now()",
            (api_url, name, kind, self._json(value)),
        )

    def compact(self) -> None:
        """Nothing to fold: every change is already in its table."""

    def save_applied(self, name: str, digests: Iterable[str]) -> None:
        self._save_applied(self.api_url, name, self.hasher.key_id, list(digests))

    def _save_applied(self, api_url: str, name: str, key_id: str, digests: list[str]) -> None:
        self._rows(
            "INSERT INTO sprunner_applied (api_url, name, key_id, digests) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (api_url, name) DO UPDATE SET "
            "key_id = excluded.key_id, digests = excluded.digests",
            (api_url, name, key_id, digests),
        )

    def load_applied(self, name: str) -> list[str] | None:
        rows = self._rows(
            "SELECT key_id, digests FROM sprunner_applied WHERE api_url = %s AND name = %s",
            (self.api_url, name),
        )
        if not rows or self._hasher is None or rows[0][0] != self._hasher.key_id:
            return None
        return list(rows[0][1])

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
        if not self._rows("SELECT pg_try_advisory_lock(%s)", (key,))[0][0]:
            return False
        self._held[name] = apply_id
        self._rows(
            "INSERT INTO sprunner_locks (api_url, name, apply_id, host, pid) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (api_url, name) DO UPDATE SET "
            "apply_id = excluded.apply_id, host = excluded.host, pid = excluded.pid, "
            "since = now()",
            (self.api_url, name, apply_id, socket.gethostname(), os.getpid()),
        )
        self._refresh(name)
        return True

    def unlock(self, name: str) -> None:
        apply_id = self._held.pop(name, None)
        if apply_id is None:
            return
        # Unlocked first: until then, whoever fails to take the lock finds our row and
        # can say who handles the collection. A row the next holder wrote is not ours.
        self._rows("SELECT pg_advisory_unlock(%s)", (lock_key(self.api_url, name),))
        self._rows(
            "DELETE FROM sprunner_locks WHERE api_url = %s AND name = %s AND apply_id = %s",
            (self.api_url, name, apply_id),
        )

    def holder(self, name: str) -> LockHolder | None:
        rows = self._rows(
            "SELECT apply_id, host, pid FROM sprunner_locks WHERE api_url = %s AND name = %s",
            (self.api_url, name),
        )
        return LockHolder(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def close(self) -> None:
        """Release every lock (the server does so when the session ends) and disconnect."""
        if not self._lost:
            for name in list(self._held):
                try:
                    self.unlock(name)
                except StateError:
                    break
        self._held.clear()
        self._connection.close()

    # -- export and import ----------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        apis: dict[str, Any] = {}

        def part(api_url: str) -> dict[str, Any]:
            found: dict[str, Any] = apis.setdefault(
                api_url, {"entries": {}, "applied": {}, "blobs": {}}
            )
            return found

        for api_url, name, value in self._rows(
            "SELECT api_url, name, entry FROM sprunner_entries ORDER BY api_url, name"
        ):
            part(api_url)["entries"][name] = value
        for api_url, name, key_id, digests in self._rows(
            "SELECT api_url, name, key_id, digests FROM sprunner_applied ORDER BY 1, 2"
        ):
            part(api_url)["applied"][name] = {"key_id": key_id, "digests": list(digests)}
        for api_url, name, kind, value in self._rows(
            "SELECT api_url, name, kind, value FROM sprunner_blobs ORDER BY 1, 2, 3"
        ):
            part(api_url)["blobs"].setdefault(name, {})[kind] = value
        return dict(sorted(apis.items()))

    def restore(self, apis: Mapping[str, Any]) -> None:
        """Merge in one transaction: an import is all there or not at all."""
        with self._connection.transaction():
            for api_url, part in apis.items():
                for name, value in part.get("entries", {}).items():
                    self._upsert_entry(api_url, name, value)
                for name, applied in part.get("applied", {}).items():
                    self._save_applied(api_url, name, applied["key_id"], applied["digests"])
                for name, kinds in part.get("blobs", {}).items():
                    for kind, value in kinds.items():
                        self._put_blob(api_url, name, kind, value)
        self._load()
