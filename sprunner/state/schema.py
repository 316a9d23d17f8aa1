"""The one schema of the state store, the same tables in SQLite and in PostgreSQL.

The SQL below is written once, in the subset both engines read alike (`?` placeholders,
which the PostgreSQL engine turns into `%s`; `INSERT ... ON CONFLICT DO UPDATE`; text for
JSON values, so that one encoder serves both). Tables:

- `sprunner_collections`: one row per collection of one API URL, the columns of `Entry`
  (a run record is three columns: id, start time, content fingerprint; both times null =
  no record; a start time without an id = a start sent and not yet answered);
- `sprunner_digests`: the request digests each collection last applied (display only:
  `plan`'s diff column), one text of newline-separated `key:content` digests;
- `sprunner_values`: per-collection JSON values other modules define by `kind` (results
  checkpoints, the retry ledger, the latest verdict, ...);
- `sprunner_holders`: who holds a collection's lock (PostgreSQL only: the SQLite state is
  guarded by one OS lock for a whole apply);
- `sprunner_schema`: the schema versions applied. Version 1 was PostgreSQL's tables of an
  entry as JSON (`sprunner_entries`, `sprunner_applied`, `sprunner_blobs`,
  `sprunner_locks`): `upgrade` copies them over once and drops them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sprunner.errors import StateError
from sprunner.state.hashing import Hasher
from sprunner.state.model import Entry, entry_from_json

SCHEMA_VERSION = 2

# Entry fields as columns: its plain fields, then its two run records (three columns each).
FIELDS = ("id", "fingerprint", "created", "creating", "started_fingerprint", "companion_of", "file")
RUN_COLUMNS = (
    "last_run_id last_run_at last_run_content inflight_run_id inflight_at inflight_content"
)
COLUMNS = (*FIELDS, *RUN_COLUMNS.split())

TABLES = (
    """CREATE TABLE sprunner_collections (
        api_url text NOT NULL, name text NOT NULL, id text NOT NULL, fingerprint text,
        created boolean NOT NULL, creating boolean NOT NULL, started_fingerprint text,
        companion_of text, file text,
        last_run_id text, last_run_at double precision, last_run_content text,
        inflight_run_id text, inflight_at double precision, inflight_content text,
        PRIMARY KEY (api_url, name))""",
    """CREATE TABLE sprunner_digests (
        api_url text NOT NULL, name text NOT NULL, key_id text NOT NULL,
        digests text NOT NULL, PRIMARY KEY (api_url, name))""",
    """CREATE TABLE sprunner_values (
        api_url text NOT NULL, name text NOT NULL, kind text NOT NULL, value text NOT NULL,
        PRIMARY KEY (api_url, name, kind))""",
    """CREATE TABLE sprunner_holders (
        api_url text NOT NULL, name text NOT NULL, apply_id text NOT NULL,
        host text NOT NULL, pid integer NOT NULL, backend integer NOT NULL,
        since double precision NOT NULL, PRIMARY KEY (api_url, name))""",
)

UPSERT_ENTRY = (
    f"INSERT INTO sprunner_collections (api_url, name, {', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' * (len(COLUMNS) + 2))}) ON CONFLICT (api_url, name) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in COLUMNS)
)
SELECT_ENTRIES = f"SELECT name, {', '.join(COLUMNS)} FROM sprunner_collections WHERE api_url = ?"
UPSERT_VALUE = (
    "INSERT INTO sprunner_values (api_url, name, kind, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (api_url, name, kind) DO UPDATE SET value = excluded.value"
)
UPSERT_DIGESTS = (
    "INSERT INTO sprunner_digests (api_url, name, key_id, digests) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (api_url, name) DO UPDATE SET key_id = excluded.key_id, "
    "digests = excluded.digests"
)

Execute = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def entry_row(entry: Entry) -> tuple[Any, ...]:
    row = [getattr(entry, field) for field in FIELDS]
    for run in (entry.last_run, entry.inflight):
        row += (None, None, None) if run is None else (run.run_id, run.started_at, run.content)
    return tuple(row)


def entry_of(row: Sequence[Any], hasher: Hasher | None) -> Entry:
    """An entry from its columns (`COLUMNS` order); with a `hasher`, fingerprints made
    under another key are unknown (`entry_from_json`)."""
    data: dict[str, Any] = dict(zip(FIELDS, row, strict=False))
    for name, at in (("last_run", len(FIELDS)), ("inflight", len(FIELDS) + 3)):
        run_id, started, content = row[at : at + 3]
        run = {"run_id": run_id, "started_at": started, "content": content}
        data[name] = None if started is None else run
    return entry_from_json(data, hasher)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def prepare(execute: Execute) -> None:
    """Bring the schema to SCHEMA_VERSION, inside the caller's transaction (and, on a
    shared database, under its migration lock)."""
    execute("CREATE TABLE IF NOT EXISTS sprunner_schema (version integer PRIMARY KEY)", ())
    current = int(execute("SELECT coalesce(max(version), 0) FROM sprunner_schema", ())[0][0])
    if current > SCHEMA_VERSION:
        raise StateError(
            f"the state has schema version {current}, newer than this sprunner knows "
            f"({SCHEMA_VERSION}): upgrade sprunner"
        )
    if current == SCHEMA_VERSION:
        return
    for statement in TABLES:
        execute(statement, ())
    if current == 1:
        _upgrade_from_1(execute)
    execute("INSERT INTO sprunner_schema (version) VALUES (?)", (SCHEMA_VERSION,))


def _upgrade_from_1(execute: Execute) -> None:
    """PostgreSQL's version 1: entries as JSON, digests as arrays, values as jsonb."""
    for api_url, name, value in execute("SELECT api_url, name, entry FROM sprunner_entries", ()):
        execute(UPSERT_ENTRY, (api_url, name, *entry_row(entry_from_json(value))))
    for api_url, name, key_id, digests in execute(
        "SELECT api_url, name, key_id, digests FROM sprunner_applied", ()
    ):
        execute(UPSERT_DIGESTS, (api_url, name, key_id, "\n".join(digests)))
    for api_url, name, kind, value in execute(
        "SELECT api_url, name, kind, value FROM sprunner_blobs", ()
    ):
        execute(UPSERT_VALUE, (api_url, name, kind, dumps(value)))
    for table in ("sprunner_entries", "sprunner_applied", "sprunner_blobs", "sprunner_locks"):
        execute(f"DROP TABLE {table}", ())
