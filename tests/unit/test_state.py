"""The state directory (SQLite): durable before anything relies on it, readable while an
apply writes, and one OS lock for a whole apply (what both engines share: state/)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from sprunner.errors import LockHeldError, StateError
from sprunner.state import Entry, RunRecord, State, lifecycle, locked


def _statements(state: State) -> list[str]:
    seen: list[str] = []
    state._connection.set_trace_callback(seen.append)
    return seen


def test_a_durable_change_is_fsynced_before_it_returns_and_the_others_ride_along(
    tmp_path: Path,
) -> None:
    """synchronous=FULL for the changes an outside effect depends on (a pending run start,
    before its POST); NORMAL (in the WAL, fsynced by the next FULL commit) for the rest."""
    state = State(tmp_path, "https://api", key="k")
    seen = _statements(state)
    lifecycle.applied(state, "shop", "c1", content="x", created=True)
    lifecycle.run_pending(state, "shop", content=None, at=1.0)
    lifecycle.run_finished(state, "shop")
    modes = [s for s in seen if s.startswith("PRAGMA synchronous")]
    assert modes == [
        "PRAGMA synchronous=NORMAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA synchronous=NORMAL",
    ]
    assert sqlite3.connect(tmp_path / "state.db").execute("PRAGMA journal_mode").fetchone() == (
        "wal",
    )


def test_a_reader_sees_every_committed_change_while_the_writer_goes_on(tmp_path: Path) -> None:
    """A kill -9 keeps every change: each is committed when the call returns (as `plan`,
    `status` or a test watching an apply read it, without the lock)."""
    writer = State(tmp_path, "https://api", key="k")
    writer.update("shop", id="c1", fingerprint="f", created=True)
    writer.update("shop", inflight=RunRecord("r1", 10.0), durable=False)
    reader = State(tmp_path, "https://api", persist=False)
    assert reader.get("shop") == Entry("c1", "f", True, inflight=RunRecord("r1", 10.0))
    with pytest.raises(StateError, match="readonly"):
        reader.update("shop", id="c2")


def test_a_read_only_open_of_no_state_creates_nothing(tmp_path: Path) -> None:
    state = State(tmp_path / "none", "https://api", persist=False)
    assert state.entries() == {} and state.load_applied("shop") is None
    state.close()
    assert not (tmp_path / "none").exists()


def _hold_lock(
    directory: str,
    ready: multiprocessing.synchronize.Event,
    done: multiprocessing.synchronize.Event,
) -> None:
    with locked(Path(directory)):
        ready.set()
        done.wait(10)


def test_a_second_holder_is_refused_at_once_and_a_dead_holder_leaves_no_lock(
    tmp_path: Path,
) -> None:
    context = multiprocessing.get_context("spawn")
    ready, done = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), ready, done))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockHeldError, match="another sprunner apply"), locked(tmp_path):
            pass
    finally:
        holder.kill()  # dies holding the lock
        holder.join()
    with locked(tmp_path):
        pass


def test_the_directory_lock_covers_every_collection(tmp_path: Path) -> None:
    state = State(tmp_path, "https://api", key="k")
    assert state.try_lock("shop", apply_id="a") and state.try_lock("shop", apply_id="b")
    assert state.holder("shop") is None
    state.unlock("shop")


def test_a_lock_path_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lock").mkdir()
    with pytest.raises(StateError, match="cannot lock the state directory"), locked(tmp_path):
        pass


def test_the_transitions_an_outside_effect_depends_on_are_fsynced_the_others_are_not(
    tmp_path: Path,
) -> None:
    """One first apply of a collection, transition by transition: the marks before a POST
    (the create, the run start) fsync (synchronous=FULL, inline: a fraction of a
    millisecond each); what the next apply can find again by looking rides along, the run
    id included (a pending start is resolved by listing the runs)."""
    state = State(tmp_path, "https://api", key="k")

    def mode() -> str:  # the setting the step's commit ran under
        level = state._connection.execute("PRAGMA synchronous").fetchone()[0]
        return {1: "NORMAL", 2: "FULL"}[level]

    steps = {
        "creating": lambda: lifecycle.creating(state, "shop", file="jobs/a.yaml"),
        "applied": lambda: lifecycle.applied(state, "shop", "c1", content="x", created=True),
        "run_seen": lambda: lifecycle.run_seen(state, "shop", "c1", "r0", at=0.5),
        "run_pending": lambda: lifecycle.run_pending(state, "shop", content="x", at=1.0),
        "run_started": lambda: lifecycle.run_started(
            state, "shop", "r1", RunRecord(None, 1.0, "x")
        ),
        "run_finished": lambda: lifecycle.run_finished(state, "shop"),
    }
    found = {}
    for name, step in steps.items():
        step()
        found[name] = mode()
    assert found == {
        "creating": "FULL",
        "applied": "NORMAL",
        "run_seen": "NORMAL",
        "run_pending": "FULL",
        "run_started": "NORMAL",
        "run_finished": "NORMAL",
    }
    # What the NORMAL commits wrote is in the database for every reader (a kill -9 keeps
    # it): the WAL, in order, which the next FULL commit's fsync covers.
    reader = State(tmp_path, "https://api", persist=False)
    assert reader.get("shop") == state.get("shop")
