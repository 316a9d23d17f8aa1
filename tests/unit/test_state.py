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


def test_during_an_apply_one_shared_fsync_covers_every_durable_change_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync a durable commit cost milliseconds of the apply's event loop: during an
    apply they are committed without one, and `synced()` (awaited before each POST) fsyncs
    the WAL once, in a worker thread, for all of them; the apply's end, what is left."""
    import asyncio
    import os

    fsynced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd))[1])
    state = State(tmp_path, "https://api", key="k")
    for index in range(20):
        state.update(f"c{index}", id=f"id{index}")
    fsynced.clear()
    seen = _statements(state)
    state.defer_durability(True)

    async def starts() -> None:
        async def one(name: str) -> None:
            lifecycle.run_pending(state, name, content=None, at=1.0)
            await state.synced()  # what the API client awaits before the POST

        await asyncio.gather(*(one(f"c{i}") for i in range(20)))
        await state.synced()  # nothing new: no fsync

    asyncio.run(starts())
    assert len(fsynced) == 1
    assert "PRAGMA synchronous=FULL" not in seen
    state.put_blob("c1", "results", {"n": 1})  # durable, after the last shared fsync
    state.defer_durability(False)
    assert len(fsynced) == 2
    state.put_blob("c1", "results", {"n": 2})  # outside an apply: fsynced by its commit
    assert seen[-2] == "PRAGMA synchronous=FULL"
