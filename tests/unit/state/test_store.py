"""The one store on both engines: a real SQLite file and a real PostgreSQL server run the
same tests (the same schema, the same transitions)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sprunner.errors import StateError
from sprunner.state import Entry, RunRecord, State, StateStore, lifecycle
from sprunner.state.model import entry_from_json, entry_to_json
from tests.unit.state.helpers import collection

API = "https://api.example"
Opener = Callable[..., StateStore]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the store of one engine (every call: another connection, as another command
    or host would); everything opened is closed at the end."""
    opened: list[StateStore] = []
    url = request.getfixturevalue("state_db") if request.param == "postgres" else None

    def open_store(api_url: str = API, *, key: str | None = "k") -> StateStore:
        if url is None:
            store: StateStore = State(tmp_path / "state", api_url, key=key)
        else:
            from sprunner.state.postgres import PostgresState

            store = PostgresState.connect(url, api_url, key=key)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def test_every_change_is_read_back_by_another_connection(opener: Opener) -> None:
    shop = collection("shop", "https://shop.example/")
    store = opener()
    content = store.fingerprint_of(shop)
    store.update("shop", id="c1", fingerprint=content, created=True, file="jobs/a.yaml")
    pending = lifecycle.run_pending(store, "shop", content=content, at=10.0)
    lifecycle.run_started(store, "shop", "r1", pending)
    store.save_applied("shop", [store.request_digest(r) for r in shop.requests])
    store.put_blob("shop", "results", {"high_water": "2026-11-28T12:00:00Z", "ids": [1, 2]})
    store.update("gone", id="c2")
    store.forget("gone")

    again = opener()
    record = RunRecord("r1", 10.0, content)
    assert again.get("shop") == Entry(
        id="c1",
        fingerprint=content,
        created=True,
        last_run=record,
        inflight=record,
        started_fingerprint=content,
        file="jobs/a.yaml",
    )
    assert list(again.entries()) == ["shop"]
    assert not lifecycle.change_pending(again, shop)
    assert again.load_applied("shop") == [again.request_digest(r) for r in shop.requests]
    assert again.get_blob("shop", "results") == {
        "high_water": "2026-11-28T12:00:00Z",
        "ids": [1, 2],
    }
    again.put_blob("shop", "results", None)
    assert opener().get_blob("shop", "results") is None


def test_entries_and_values_are_per_api_url(opener: Opener) -> None:
    opener("https://one").update("shop", id="c1")
    opener("https://one").put_blob("shop", "verdict", {"ok": True})
    assert opener("https://two").get("shop") is None
    assert opener("https://two").get_blob("shop", "verdict") is None
    assert opener("https://one").get_blob("shop", "verdict") == {"ok": True}


def test_another_key_sees_fingerprints_and_digests_as_unknown(opener: Opener) -> None:
    shop = collection("shop", "https://shop.example/")
    store = opener()
    content = store.fingerprint_of(shop)
    store.update("shop", id="c1", fingerprint=content, started_fingerprint=content)
    store.update("shop", last_run=RunRecord("r1", 1.0, content))
    store.save_applied("shop", ["a:b"])
    other = opener(key="another key")
    assert other.get("shop") == Entry(id="c1", last_run=RunRecord("r1", 1.0))
    assert other.load_applied("shop") is None
    assert lifecycle.change_pending(other, shop)


def test_a_batch_is_all_or_nothing(opener: Opener) -> None:
    store = opener()
    store.update("shop", id="c1")
    with pytest.raises(RuntimeError), store.batch():
        store.update("shop", id="c2")
        store.put_blob("shop", "results", {"n": 1})
        raise RuntimeError("cut short")
    assert store.get("shop") == Entry(id="c1") == opener().get("shop")
    assert store.get_blob("shop", "results") is None
    with store.batch():
        store.update("blog", id="c3")
        store.put_blob("blog", "retry", {"done": True})
    assert opener().get_blob("blog", "retry") == {"done": True}


def test_forgetting_an_entry_keeps_its_values(opener: Opener) -> None:
    store = opener()
    store.update("shop", id="c1")
    store.put_blob("shop", "create-generation", 2)
    store.forget("shop")
    again = opener()
    assert again.get("shop") is None and again.get_blob("shop", "create-generation") == 2


def test_a_new_id_drops_the_run_records_of_the_old_collection(opener: Opener) -> None:
    """Runs belong to a collection, not to its name: after a create under a known name (the
    old collection deleted remotely), no pending start or run id of the old one is left to
    adopt."""
    store = opener()
    content = f"{store.hasher.key_id}:x"
    store.update("shop", id="c1", created=True, last_run=RunRecord("r0", 5.0))
    store.update("shop", inflight=RunRecord(None, 10.0, content))
    store.update("shop", fingerprint=None)  # the same collection: its runs are kept
    assert store.get("shop") == Entry(
        "c1", None, True, last_run=RunRecord("r0", 5.0), inflight=RunRecord(None, 10.0, content)
    )
    lifecycle.creating(store, "shop", file="a.yaml")  # a create sent again
    lifecycle.applied(store, "shop", "c2", content=content, created=True)
    for entry in (store.get("shop"), opener().get("shop")):
        assert entry == Entry("c2", content, True, file="a.yaml")


def test_the_export_document_moves_a_state_whole(opener: Opener, tmp_path: Path) -> None:
    store = opener()
    store.update("shop", id="c1", created=True, inflight=RunRecord(None, 3.0), file="a.yaml")
    store.save_applied("shop", ["a:b", "c:d"])
    store.put_blob("shop", "results", {"mark": 1})
    opener("https://other").update("blog", id="c9")
    document = store.dump()
    assert document["https://other"]["entries"]["blog"]["id"] == "c9"
    target = State(tmp_path / "elsewhere", API, key="k")
    target.restore(json.loads(json.dumps(document)))
    assert target.dump() == document
    assert target.get("shop") == store.get("shop")
    target.close()


def test_an_entry_keeps_every_field() -> None:
    """`entry_to_json` and the table's columns must follow the dataclass: a field added to
    Entry and forgotten there would be lost at the next save."""
    from dataclasses import asdict, fields

    entry = Entry(
        id="c1",
        fingerprint="f",
        created=True,
        last_run=RunRecord("r1", 1.0, "k:a"),
        inflight=RunRecord(None, 2.0, "k:b"),
        creating=True,
        started_fingerprint="s",
        companion_of="parent",
        file="jobs/a.yaml",
    )
    assert all(getattr(entry, f.name) != f.default for f in fields(Entry))  # all set
    assert entry_to_json(entry) == asdict(entry)
    assert entry_from_json(entry_to_json(entry)) == entry


def test_a_store_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_text("not a database")
    with pytest.raises(StateError, match=r"state\.db"):
        State(tmp_path, API, key="k")
