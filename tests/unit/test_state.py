"""The state is a journaled cache: every change survives a kill, a torn line is ignored."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from sprunner.errors import LockHeldError, StateError
from sprunner.state import RunRecord, State, locked


def test_changes_survive_without_compaction(tmp_path: Path) -> None:
    state = State(tmp_path, "https://api", key="k")
    state.update("shop", id="c1", fingerprint="f", created=True)
    state.update("shop", inflight=RunRecord("r1", 10.0))
    # No compact(): as after a kill -9.
    again = State(tmp_path, "https://api")
    entry = again.get("shop")
    assert entry is not None
    assert (entry.id, entry.fingerprint, entry.created) == ("c1", "f", True)
    assert entry.inflight == RunRecord("r1", 10.0)


def test_ids_are_fsynced_and_forgetting_a_finished_run_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    state = State(tmp_path, "https://api", key="k")
    state.update("shop", id="c1")
    state.update("shop", inflight=RunRecord(None, 10.0))
    state.update("shop", inflight=RunRecord("r1", 10.0))
    assert len(synced) == 3  # the id, the pending start, the run id: each before use
    state.update("shop", inflight=None, durable=False)
    state.save_applied("shop", ["a:b"])
    assert len(synced) == 3
    # Still written at once: a kill -9 (not a power cut) keeps it.
    entry = State(tmp_path, "https://api").get("shop")
    assert entry is not None and entry.inflight is None


def test_compaction_folds_the_journal(tmp_path: Path) -> None:
    state = State(tmp_path, "https://api", key="k")
    state.update("shop", id="c1")
    state.update("blog", id="c2")
    state.forget("blog")
    state.compact()
    assert not (tmp_path / "journal.jsonl").exists()
    again = State(tmp_path, "https://api")
    assert list(again.entries()) == ["shop"]


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    state = State(tmp_path, "https://api", key="k")
    state.update("shop", id="c1")
    with (tmp_path / "journal.jsonl").open("a") as journal:
        journal.write('{"api": "https://api", "name": "blog", "ent')
    assert list(State(tmp_path, "https://api").entries()) == ["shop"]


def test_entries_are_per_api_url(tmp_path: Path) -> None:
    State(tmp_path, "https://one").update("shop", id="c1")
    assert State(tmp_path, "https://two").get("shop") is None
    assert State(tmp_path, "https://one").get("shop") is not None


def test_unreadable_state_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(StateError, match="cannot read the state"):
        State(tmp_path, "https://api")


def test_applied_digests_round_trip(tmp_path: Path) -> None:
    state = State(tmp_path, "https://api", key="k")
    assert state.load_applied("shop") is None
    state.save_applied("shop", ["a:b", "c:d"])
    assert State(tmp_path, "https://api", key="k").load_applied("shop") == ["a:b", "c:d"]


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
