"""The PostgreSQL state on a real server: round trip, migrations, advisory locks."""

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
from sprunner.state.postgres import SCHEMA_VERSION, PostgresState
from tests.unit.state.helpers import collection

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
    assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
    assert tables == {
        "sprunner_schema",
        "sprunner_entries",
        "sprunner_applied",
        "sprunner_blobs",
        "sprunner_locks",
    }


def test_a_newer_schema_is_refused_clearly(state_db: str) -> None:
    connect(state_db).close()
    with psycopg.connect(state_db, autocommit=True) as connection:
        connection.execute("INSERT INTO sprunner_schema (version) VALUES (%s)", (99,))
    with pytest.raises(StateError, match="schema version 99, newer"):
        connect(state_db)


def test_everything_the_directory_holds_round_trips(state_db: str) -> None:
    shop = collection("shop", "https://shop.example/")
    store = connect(state_db)
    store.update("shop", id="c1", fingerprint=store.fingerprint_of(shop), created=True)
    store.update("shop", inflight=RunRecord("r1", 10.0), last_run=RunRecord("r1", 10.0))
    store.mark_started("shop", shop)
    store.save_applied("shop", [store.request_digest(r) for r in shop.requests])
    store.put_blob("shop", "results", {"high_water": "2026-11-28T12:00:00Z"})
    store.update("gone", id="c2")
    store.forget("gone")
    store.close()

    again = connect(state_db)
    entry = again.get("shop")
    assert entry == Entry(
        id="c1",
        fingerprint=again.fingerprint_of(shop),
        created=True,
        last_run=RunRecord("r1", 10.0),
        inflight=RunRecord("r1", 10.0),
        started_fingerprint=again.fingerprint_of(shop),
    )
    assert list(again.entries()) == ["shop"]
    assert not again.changed_since_started("shop", shop)
    assert again.load_applied("shop") == [again.request_digest(r) for r in shop.requests]
    assert again.get_blob("shop", "results") == {"high_water": "2026-11-28T12:00:00Z"}
    again.put_blob("shop", "results", None)
    again.close()
    last = connect(state_db)
    assert last.get_blob("shop", "results") is None
    last.close()


def test_another_key_sees_fingerprints_as_unknown(state_db: str) -> None:
    shop = collection("shop", "https://shop.example/")
    store = connect(state_db)
    store.update("shop", id="c1", fingerprint=store.fingerprint_of(shop))
    store.save_applied("shop", ["a:b"])
    store.close()
    other = connect(state_db, key="another key")
    entry = other.get("shop")
    assert entry is not None and entry.id == "c1" and entry.fingerprint is None
    assert other.load_applied("shop") is None
    other.close()


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
