"""The PostgreSQL state on a real server: schema upgrades, advisory locks and their holders,
a lost connection (what both engines share is in test_store.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest

from sprunner.errors import LockHeldError, StateError
from sprunner.state import Entry, RunRecord, StateConnectionLost, opened
from sprunner.state.open import WHOLE_STATE
from sprunner.state.postgres import PostgresState
from sprunner.state.schema import SCHEMA_VERSION

API = "https://api.example"
DEADLINE = 20.0


def connect(url: str, *, key: str | None = "k") -> PostgresState:
    return PostgresState.connect(url, API, key=key)


def test_a_fresh_database_is_migrated_once(state_db: str) -> None:
    connect(state_db).close()
    connect(state_db).close()  # a second start finds the schema up to date
    with psycopg.connect(state_db) as connection:
        versions = connection.execute("SELECT version FROM sprunner_schema").fetchall()
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'sprunner_%'"
            )
        }
    assert [v for (v,) in versions] == [SCHEMA_VERSION]
    assert tables == {
        "sprunner_schema",
        "sprunner_collections",
        "sprunner_digests",
        "sprunner_values",
        "sprunner_holders",
    }


VERSION_1 = (  # the tables and rows of the PostgreSQL state before the one schema
    "CREATE TABLE sprunner_schema (version integer PRIMARY KEY, "
    "applied_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE sprunner_entries (api_url text NOT NULL, name text NOT NULL, "
    "entry jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), "
    "PRIMARY KEY (api_url, name))",
    "CREATE TABLE sprunner_applied (api_url text NOT NULL, name text NOT NULL, "
    "key_id text NOT NULL, digests text[] NOT NULL, PRIMARY KEY (api_url, name))",
    "CREATE TABLE sprunner_blobs (api_url text NOT NULL, name text NOT NULL, "
    "kind text NOT NULL, value jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (api_url, name, kind))",
    "CREATE TABLE sprunner_locks (api_url text NOT NULL, name text NOT NULL, "
    "apply_id text NOT NULL, host text NOT NULL, pid integer NOT NULL, "
    "since timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (api_url, name))",
    "INSERT INTO sprunner_schema (version) VALUES (1)",
    """INSERT INTO sprunner_entries (api_url, name, entry) VALUES ('https://api.example',
    'shop', '{"id": "c1", "fingerprint": null, "created": true, "last_run": {"run_id":
    "r1", "started_at": 5.0}, "inflight": {"run_id": null, "started_at": 9.0}, "creating":
    false, "started_fingerprint": null, "companion_of": null}')""",
    "INSERT INTO sprunner_applied VALUES ('https://api.example', 'shop', 'kid', "
    "ARRAY['a:b', 'c:d'])",
    """INSERT INTO sprunner_blobs (api_url, name, kind, value) VALUES
    ('https://api.example', 'shop', 'results', '{"mark": 3}')""",
)


def test_a_version_1_database_is_upgraded_once_with_everything_it_held(state_db: str) -> None:
    with psycopg.connect(state_db, autocommit=True) as connection:
        for statement in VERSION_1:
            connection.execute(statement)
    store = connect(state_db)
    assert store.get("shop") == Entry(
        "c1", created=True, last_run=RunRecord("r1", 5.0), inflight=RunRecord(None, 9.0)
    )
    assert store.get_blob("shop", "results") == {"mark": 3}
    assert store.dump()[API]["applied"] == {"shop": {"key_id": "kid", "digests": ["a:b", "c:d"]}}
    store.close()
    with psycopg.connect(state_db) as connection:
        versions = connection.execute("SELECT version FROM sprunner_schema ORDER BY 1")
        assert [v for (v,) in versions] == [1, SCHEMA_VERSION]
        gone = connection.execute("SELECT to_regclass('sprunner_entries')").fetchone()
        assert gone == (None,)
    connect(state_db).close()  # up to date: nothing more happens


def test_a_newer_schema_is_refused_clearly(state_db: str) -> None:
    connect(state_db).close()
    with psycopg.connect(state_db, autocommit=True) as connection:
        connection.execute("INSERT INTO sprunner_schema (version) VALUES (%s)", (99,))
    with pytest.raises(StateError, match="schema version 99, newer"):
        connect(state_db)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from sprunner.state.postgres import PostgresState
    store = PostgresState.connect(sys.argv[1], sys.argv[2], key="k")
    assert store.try_lock("shop", apply_id="holder-apply")
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_a_lock_is_refused_to_others_and_freed_when_its_holder_is_killed(state_db: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, state_db, API],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        store = connect(state_db)
        assert not store.try_lock("shop", apply_id="mine")
        found = store.holder("shop")
        assert found is not None and found.apply_id == "holder-apply"
        assert str(found) == f"apply holder-apply on {found.host}"
        assert store.try_lock("blog", apply_id="mine")  # other collections are free
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + DEADLINE
    while not store.try_lock("shop", apply_id="mine"):
        assert time.monotonic() < deadline, "the killed holder's lock was never released"
        time.sleep(0.05)
    now = store.holder("shop")
    assert now is not None and now.apply_id == "mine"
    store.unlock("shop")
    assert store.holder("shop") is None
    store.close()


def test_a_holder_that_has_exited_is_never_named(state_db: str) -> None:
    """Its row may outlive it (a killed apply deletes nothing); only a session that holds
    the lock now is named."""
    gone = connect(state_db)
    assert gone.try_lock("shop", apply_id="gone-apply")
    with psycopg.connect(state_db, autocommit=True) as admin:  # as a kill -9 ends a session
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'sprunner' AND pid <> pg_backend_pid()"
        )
        (rows,) = admin.execute("SELECT count(*) FROM sprunner_holders").fetchone()  # type: ignore[misc]
        assert rows == 1
    gone.close()
    store = connect(state_db)
    assert store.holder("shop") is None
    assert store.try_lock("shop", apply_id="next") and store.holder("shop") is not None
    other = connect(state_db)
    found = other.holder("shop")
    assert found is not None and found.apply_id == "next"
    store.close()
    assert other.holder("shop") is None
    other.close()


def test_taking_a_lock_reads_what_the_previous_holder_wrote(state_db: str) -> None:
    mine, theirs = connect(state_db), connect(state_db)
    assert mine.get("shop") is None
    assert theirs.try_lock("shop", apply_id="theirs")
    theirs.update("shop", id="c9", created=True)
    theirs.unlock("shop")
    assert mine.try_lock("shop", apply_id="mine")
    assert mine.get("shop") == Entry(id="c9", created=True)
    mine.close()
    theirs.close()


def test_a_whole_state_lock_makes_a_second_apply_exit_as_locked(state_db: str) -> None:
    common = {"state_dir": None, "state_url": state_db, "api_url": API, "key": "k"}
    second = pytest.raises(LockHeldError, match=r"apply first on .* holds the lock")
    with opened(**common, apply_id="first"), second, opened(**common):  # type: ignore[arg-type]
        pass
    with opened(**common):  # type: ignore[arg-type]
        pass
    assert WHOLE_STATE == ""


def test_a_lost_connection_is_its_own_error(state_db: str) -> None:
    store = connect(state_db)
    store.update("shop", id="c1")
    with psycopg.connect(state_db, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'sprunner' AND pid <> pg_backend_pid()"
        )
    with pytest.raises(StateConnectionLost, match="lost the connection"):
        store.update("shop", id="c2")
    with pytest.raises(StateConnectionLost):  # and it stays lost: the locks are gone
        store.try_lock("shop", apply_id="mine")
    store.close()


def test_an_unreachable_database_is_a_clear_error_without_its_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(StateConnectionLost, match="cannot connect to the state database") as e:
        connect(f"postgresql://sprunner:hunter2@127.0.0.1:{port}/x")
    assert "hunter2" not in str(e.value) and ":***@127.0.0.1" in str(e.value)
