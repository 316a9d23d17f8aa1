"""A state directory of the format before the store is migrated once, the old files kept.

`tests/data/state-fe83217/` was written by the code of commit fe83217 (and, before it, of
27a029f, whose applied/ files were one per collection): a snapshot, a journal an apply
killed by SIGKILL left unfolded, buckets and older files side by side. Its `export.json`
is what that code's own `sprunner state export` read from it (tests/data/make_old_state.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sprunner.errors import StateError
from sprunner.state import Entry, RunRecord, State, locked, migrate
from sprunner.state import store as store_module

DATA = Path(__file__).parents[2] / "data" / "state-fe83217"
API = "http://127.0.0.1:36983"  # the emulator the old code applied against
KEY = "fake-key-for-the-migration-test"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    shutil.copytree(DATA / "state", tmp_path / "state")
    return tmp_path / "state"


def expected() -> dict[str, object]:
    """The old export, in the new document's form (two fields it did not have: unknown)."""
    apis = json.loads((DATA / "export.json").read_text())["apis"]
    for part in apis.values():
        for entry in part["entries"].values():
            entry["file"] = None
            for run in (entry["last_run"], entry["inflight"]):
                if run is not None:
                    run["content"] = None
    return apis  # type: ignore[no-any-return]


def test_a_directory_of_the_code_before_is_migrated_once_with_everything(old: Path) -> None:
    with locked(old):
        store = State(old, API, key=KEY)
        assert store.dump() == expected()
        # The journal's records (never folded into the snapshot) are there: the runs the
        # killed apply started are in flight, to be adopted by the next apply.
        entry = store.get("c")
        assert entry is not None and entry.inflight is not None
        assert entry.inflight == entry.last_run and entry.inflight.run_id is not None
        assert store.load_applied("a") == expected()[API]["applied"]["a"]["digests"]  # type: ignore[index]
        store.close()
    (backup,) = old.glob("backup-*")
    assert sorted(p.name for p in backup.iterdir()) == ["applied", "journal.jsonl", "state.json"]
    assert sorted(p.name for p in old.iterdir() if not p.name.startswith("state.db")) == [
        backup.name,
        "lock",
    ]
    with locked(old):  # once: the next open reads the database only
        again = State(old, API, key=KEY)
        assert again.dump() == expected()
        again.close()
    assert len(list(old.glob("backup-*"))) == 1


def test_a_read_only_open_reads_the_older_files_and_writes_nothing(old: Path) -> None:
    before = sorted((p.relative_to(old), p.stat().st_mtime_ns) for p in old.rglob("*"))
    store = State(old, API, key=KEY, persist=False)
    assert store.dump() == expected()
    store.close()
    assert sorted((p.relative_to(old), p.stat().st_mtime_ns) for p in old.rglob("*")) == before


def test_a_migration_cut_short_leaves_the_older_files_and_is_done_again(
    old: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store_module.StateStore.restore

    def killed(self: store_module.StateStore, apis: object) -> None:
        raise KeyboardInterrupt  # in the middle of the transaction

    monkeypatch.setattr(store_module.StateStore, "restore", killed)
    with pytest.raises(KeyboardInterrupt):
        State(old, API, key=KEY)
    assert (old / "state.json").exists() and not list(old.glob("backup-*"))

    # Killed after the commit, before the old files were set aside: not imported twice.
    monkeypatch.setattr(store_module.StateStore, "restore", real)
    monkeypatch.setattr(migrate, "set_aside", lambda *a, **k: None)
    State(old, API, key=KEY).close()
    monkeypatch.undo()
    monkeypatch.setattr(
        store_module.StateStore, "restore", lambda *a: pytest.fail("imported twice")
    )
    store = State(old, API, key=KEY)
    assert store.dump() == expected()
    store.close()
    assert not (old / "state.json").exists() and len(list(old.glob("backup-*"))) == 1


def test_a_version_1_state_migrates_with_every_fingerprint_unknown(tmp_path: Path) -> None:
    old = {"id": "c1", "fingerprint": "ab" * 32, "created": True, "last_run": None}
    (tmp_path / "state.json").write_text(
        json.dumps({"version": 1, "apis": {"https://api": {"shop": old}}})
    )
    (tmp_path / "applied").mkdir()
    # Unkeyed digests (a brute-force oracle for short secrets) are not carried over.
    (tmp_path / "applied" / "0123456789abcdef01234567.txt").write_text("0123:4567\n")
    store = State(tmp_path, "https://api", key="k")
    assert store.get("shop") == Entry(id="c1", fingerprint=None, created=True)
    assert store.dump()["https://api"]["applied"] == {}
    store.close()


def test_torn_journal_lines_are_skipped_and_a_record_after_one_is_kept(tmp_path: Path) -> None:
    record = '{"api": "https://api", "name": "news", "entry": {"id": "c3", "created": true}}'
    run = '{"api": "https://api", "name": "news", "entry": {"id": "c3", "created": true, '
    run += '"inflight": {"run_id": "r1", "started_at": 4.0}}}'
    (tmp_path / "journal.jsonl").write_text(
        '{"api": "https://api", "name": "bl' + record + "\n" + run + "\n"
        '{"api": "https://api", "name": "blog", "ent'
    )
    store = State(tmp_path, "https://api", key="k")
    assert store.entries() == {"news": Entry(id="c3", created=True, inflight=RunRecord("r1", 4.0))}
    store.close()


def test_an_unreadable_older_state_is_a_clear_error_and_nothing_moves(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(StateError, match="cannot read the state"):
        State(tmp_path, "https://api")
    assert (tmp_path / "state.json").exists() and not list(tmp_path.glob("backup-*"))


def test_the_old_files_are_moved_aside_durably(old: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #22 item 8: a rename is followed by an fsync of the folders it changed, so a
    power cut cannot bring the old files back beside the database that holds them."""
    synced: list[Path] = []
    real = migrate.fsync_directory
    monkeypatch.setattr(migrate, "fsync_directory", lambda d: (synced.append(Path(d)), real(d)))
    State(old, API, key=KEY).close()
    (backup,) = old.glob("backup-*")
    assert synced == [backup, old]
