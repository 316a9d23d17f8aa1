"""The state is a journaled cache: every change survives a kill, a torn line is ignored."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from sprunner.errors import LockHeldError, StateError
from sprunner.state import Entry, RunRecord, State, locked


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


@pytest.mark.parametrize("grouped", [False, True], ids=["per-change", "group-commit"])
def test_a_record_after_a_torn_line_starts_a_line_of_its_own(tmp_path: Path, grouped: bool) -> None:
    """Power lost mid-record, then an apply: its records are never joined to the torn
    fragment, whether the journal is opened per change or held open (group commit)."""
    State(tmp_path, "https://api", key="k").update("shop", id="c1")
    with (tmp_path / "journal.jsonl").open("a") as journal:
        journal.write('{"api": "https://api", "name": "blog", "ent')
    state = State(tmp_path, "https://api", key="k")
    state.defer_durability(grouped)
    for index in range(3):
        state.update(f"new{index}", id=f"n{index}")
    state.defer_durability(False)
    assert sorted(State(tmp_path, "https://api").entries()) == ["new0", "new1", "new2", "shop"]


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


def test_an_append_after_a_torn_line_starts_on_a_fresh_line(tmp_path: Path) -> None:
    state = State(tmp_path, "https://api", key="k")
    state.update("shop", id="c1")
    with (tmp_path / "journal.jsonl").open("a") as journal:
        journal.write('{"api": "https://api", "name": "blog", "ent')  # power loss mid-write
    # The next apply reads it, then records a create: that mark must survive a kill.
    again = State(tmp_path, "https://api", key="k")
    again.update("news", id="c3", created=True)
    # On a line of its own, readable by any JSON-lines reader, not only by our salvage.
    last_line = (tmp_path / "journal.jsonl").read_text().splitlines()[-1]
    assert json.loads(last_line)["entry"]["created"] is True
    entries = State(tmp_path, "https://api", key="k").entries()
    assert sorted(entries) == ["news", "shop"]
    assert entries["news"].created


def test_a_record_joined_to_a_torn_line_by_an_older_version_is_kept(tmp_path: Path) -> None:
    record = '{"api": "https://api", "name": "news", "entry": {"id": "c3", "created": true}}'
    (tmp_path / "journal.jsonl").write_text('{"api": "https://api", "name": "bl' + record + "\n")
    entry = State(tmp_path, "https://api").get("news")
    assert entry is not None and entry.created


def test_a_version_1_state_loads_with_every_fingerprint_unknown(tmp_path: Path) -> None:
    old = {"id": "c1", "fingerprint": "ab" * 32, "created": True, "last_run": None}
    (tmp_path / "state.json").write_text(
        json.dumps({"version": 1, "apis": {"https://api": {"shop": old}}})
    )
    (tmp_path / "applied").mkdir()
    unkeyed = tmp_path / "applied" / "0123456789abcdef01234567.txt"
    unkeyed.write_text("0123456789abcdef:0123456789abcdef\n")
    state = State(tmp_path, "https://api", key="k")
    assert state.get("shop") == Entry(id="c1", fingerprint=None, created=True)
    # Unkeyed digests are a brute-force oracle for short secrets: gone at the first apply.
    assert not unkeyed.exists()
    state.compact()
    assert json.loads((tmp_path / "state.json").read_text())["version"] == 2


def test_content_of_the_last_started_run_is_kept_apart_from_what_was_applied(
    tmp_path: Path,
) -> None:
    from tests.unit.state.helpers import collection

    before = collection("shop", "https://shop.example/1")
    after = collection("shop", "https://shop.example/2")
    state = State(tmp_path, "https://api", key="k")
    assert state.changed_since_started("shop", before)  # nothing known: changed
    state.update("shop", id="c1", fingerprint=state.fingerprint_of(before))
    assert state.changed_since_started("shop", before)  # applied, never run
    state.mark_started("shop", before)
    assert not state.changed_since_started("shop", before)
    # Applied with --no-run: the change stays pending until a run starts with it.
    state.update("shop", fingerprint=state.fingerprint_of(after))
    again = State(tmp_path, "https://api", key="k")
    assert again.changed_since_started("shop", after)
    again.mark_started("shop", after)
    assert not State(tmp_path, "https://api", key="k").changed_since_started("shop", after)
    # Another key (or a lost state) knows nothing: changed.
    assert State(tmp_path, "https://api", key="other").changed_since_started("shop", after)


def test_per_collection_values_survive_a_kill_and_a_compaction(tmp_path: Path) -> None:
    state = State(tmp_path, "https://api", key="k")
    state.put_blob("shop", "results", {"mark": 1})
    state.put_blob("shop", "results", {"mark": 2})
    state.put_blob("blog", "results", {"mark": 9})
    state.put_blob("blog", "results", None)
    assert State(tmp_path, "https://api").get_blob("shop", "results") == {"mark": 2}
    state.compact()
    again = State(tmp_path, "https://api")
    assert again.get_blob("shop", "results") == {"mark": 2}
    assert again.get_blob("blog", "results") is None
    assert State(tmp_path, "https://other").get_blob("shop", "results") is None


def test_the_directory_lock_covers_every_collection(tmp_path: Path) -> None:
    state = State(tmp_path, "https://api", key="k")
    assert state.try_lock("shop", apply_id="a") and state.try_lock("shop", apply_id="b")
    assert state.holder("shop") is None
    state.unlock("shop")


def test_a_lock_path_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "lock").mkdir()
    with pytest.raises(StateError, match="cannot lock the state directory"), locked(tmp_path):
        pass


def test_a_new_id_drops_the_run_records_of_the_old_collection(tmp_path: Path) -> None:
    """Runs belong to a collection, not to its name: after a create under a known name (the
    old collection deleted remotely), no pending start or run id of the old one is left to
    adopt, also after a kill (the journal says the same)."""
    state = State(tmp_path, "https://api", key="k")
    state.update("shop", id="c1", created=True, last_run=RunRecord("r0", 5.0))
    state.update("shop", inflight=RunRecord(None, 10.0))
    state.update("shop", fingerprint="f")  # the same collection: its runs are kept
    assert state.get("shop") == Entry(
        "c1", "f", True, last_run=RunRecord("r0", 5.0), inflight=RunRecord(None, 10.0)
    )
    state.update("shop", id="", creating=True)  # a create sent again
    state.update("shop", id="c2", fingerprint="g", creating=False)
    for entry in (state.get("shop"), State(tmp_path, "https://api").get("shop")):
        assert entry == Entry("c2", "g", True)
    # Given with the new id, they are the new collection's (a run start's first look).
    state.update("shop", id="c3", last_run=RunRecord("r9", 20.0))
    assert state.get("shop") == Entry("c3", "g", True, last_run=RunRecord("r9", 20.0))


def test_an_entry_is_stored_with_every_field_and_read_back_the_same() -> None:
    """The written-out `entry_to_json` must follow the dataclass: a field added to Entry
    and forgotten there would be lost at the next save."""
    from dataclasses import asdict, fields

    from sprunner.state.model import entry_from_json, entry_to_json

    entry = Entry(
        id="c1",
        fingerprint="f",
        created=True,
        last_run=RunRecord("r1", 1.0),
        inflight=RunRecord(None, 2.0),
        creating=True,
        started_fingerprint="s",
        companion_of="parent",
    )
    assert all(getattr(entry, f.name) != f.default for f in fields(Entry))  # all set
    assert entry_to_json(entry) == asdict(entry)
    assert entry_from_json(entry_to_json(entry)) == entry


def test_applied_digests_kept_during_an_apply_are_written_by_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During an apply the applied/ files are batched (display-only data): all of them are
    on disk once the apply ends, and early when too many digests are pending."""
    from sprunner.state import directory

    state = State(tmp_path, "https://api", key="k")
    state.defer_durability(True)
    state.update("one", id="c1")
    state.save_applied("one", ["a:1", "b:2"])
    state.defer_durability(False)
    assert State(tmp_path, "https://api", key="k").load_applied("one") == ["a:1", "b:2"]

    monkeypatch.setattr(directory, "MAX_PENDING_DIGESTS", 1)
    state.defer_durability(True)
    state.update("two", id="c2")
    state.save_applied("two", ["c:3", "d:4"])
    # Over the bound: written at once, before the apply ends.
    assert State(tmp_path, "https://api", key="k").load_applied("two") == ["c:3", "d:4"]
    state.defer_durability(False)
