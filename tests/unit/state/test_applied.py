"""The applied/ folder: request digests per collection, kept in 256 bucket files.

What a user relies on: `plan` finds what each collection last applied, whatever else was
written since into the same bucket, whether written by this layout or the one before it,
and an apply of many collections writes few files, late, and nothing lost on a failure.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from sprunner.state import State
from sprunner.state.applied import AppliedFiles, collection_key
from tests.unit.state.helpers import collection

API = "https://api"


def digests(name: str, count: int = 3) -> list[str]:
    return [f"{name}{i:04x}:{i:016x}"[-33:] for i in range(count)]


def test_every_collection_reads_back_what_it_last_applied_among_many(tmp_path: Path) -> None:
    state = State(tmp_path, API, key="k")
    names = [f"c{i}" for i in range(1000)]  # every bucket holds several
    for name in names:
        state.save_applied(name, digests(name))
    state.save_applied("c7", ["a:b"])  # rewritten alone: its bucket's others stay
    again = State(tmp_path, API, key="k")
    assert again.load_applied("c7") == ["a:b"]
    assert all(again.load_applied(n) == digests(n) for n in names if n != "c7")
    assert again.load_applied("never") is None
    assert len(list((tmp_path / "applied").iterdir())) <= 256
    # Another API's collection of the same name is another collection.
    assert State(tmp_path, "https://other", key="k").load_applied("c1") is None


def test_digests_made_under_another_key_are_not_comparable(tmp_path: Path) -> None:
    State(tmp_path, API, key="k").save_applied("shop", ["a:b"])
    assert State(tmp_path, API, key="other").load_applied("shop") is None


def test_files_of_the_layout_before_buckets_are_read_then_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "applied"
    folder.mkdir()
    state = State(tmp_path, API, key="k")
    key_id = state.hasher.key_id
    old = folder / f"{collection_key(API, 'shop')}.txt"
    old.write_text(f"#{key_id}\na:1\nb:2\n")
    (folder / f"{collection_key(API, 'cart')}.txt").write_text(f"#{key_id}\nc:3\n")
    state = State(tmp_path, API, key="k")
    assert state.load_applied("shop") == ["a:1", "b:2"]
    state.save_applied("shop", ["a:9"])
    assert not old.exists()  # one place only for each collection
    again = State(tmp_path, API, key="k")
    assert again.load_applied("shop") == ["a:9"]
    assert again.load_applied("cart") == ["c:3"]


def test_an_export_carries_the_digests_of_both_layouts(tmp_path: Path) -> None:
    state = State(tmp_path / "a", API, key="k")
    state.update("shop", id="c1")
    state.update("cart", id="c2")
    state.save_applied("shop", ["a:1"])
    folder = tmp_path / "a" / "applied"
    key_id = state.hasher.key_id
    (folder / f"{collection_key(API, 'cart')}.txt").write_text(f"#{key_id}\nc:3\n")
    dumped = State(tmp_path / "a", API, key="k").dump()
    assert dumped[API]["applied"] == {
        "cart": {"key_id": key_id, "digests": ["c:3"]},
        "shop": {"key_id": key_id, "digests": ["a:1"]},
    }
    restored = State(tmp_path / "b", API, key="k")
    restored.restore(dumped)
    assert State(tmp_path / "b", API, key="k").load_applied("cart") == ["c:3"]


def test_an_apply_makes_the_digests_while_runs_go_on_and_loses_none_to_a_failure(
    tmp_path: Path,
) -> None:
    """`settle` (once every collection is reconciled) makes and writes what was kept; if
    writing fails, it stays pending and the end of the apply writes it or says why."""
    state = State(tmp_path, API, key="k")
    shop = collection("shop", "https://shop.example/1", "https://shop.example/2")
    expected = list(state.hasher.request_digests(shop))
    state.defer_durability(True)
    state.update("shop", id="c1")
    state.record_applied(shop)
    assert State(tmp_path, API, key="k").load_applied("shop") is None  # kept for later

    shutil.rmtree(tmp_path / "applied", ignore_errors=True)
    (tmp_path / "applied").write_text("in the way")  # the folder cannot be made
    asyncio.run(state.settle())
    (tmp_path / "applied").unlink()
    assert State(tmp_path, API, key="k").load_applied("shop") is None

    state.defer_durability(False)  # the end of the apply: written now
    assert State(tmp_path, API, key="k").load_applied("shop") == expected


def test_settle_writes_before_the_end_of_the_apply(tmp_path: Path) -> None:
    state = State(tmp_path, API, key="k")
    shop = collection("shop", "https://shop.example/1")
    state.defer_durability(True)
    state.record_applied(shop)
    asyncio.run(state.settle())
    assert State(tmp_path, API, key="k").load_applied("shop") == list(
        state.hasher.request_digests(shop)
    )
    state.defer_durability(False)


def test_bucket_texts_parse_back_block_by_block(tmp_path: Path) -> None:
    files = AppliedFiles(tmp_path)
    entries = {(API, f"n{i}"): ("kid", digests(f"n{i}", i)) for i in range(600)}
    files.write(entries)  # some with no digests at all
    fresh = AppliedFiles(tmp_path)
    for (api, name), (key_id, made) in entries.items():
        assert fresh.read(api, name) == (key_id, made)


def test_collections_kept_for_later_do_not_count_against_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collection kept costs no memory (the plan holds it); digests made do."""
    from sprunner.state import directory

    monkeypatch.setattr(directory, "MAX_PENDING_DIGESTS", 3)
    state = State(tmp_path, API, key="k")
    state.defer_durability(True)
    shops = [
        collection(f"s{i}", *(f"https://s{i}.example/{p}" for p in range(2))) for i in range(4)
    ]
    for shop in shops:
        state.record_applied(shop)
    assert State(tmp_path, API, key="k").load_applied("s0") is None  # nothing written early
    asyncio.run(state.settle())  # made two by two: over the bound, written as it goes
    assert all(
        State(tmp_path, API, key="k").load_applied(s.name) == list(state.hasher.request_digests(s))
        for s in shops
    )
    state.defer_durability(False)


def test_a_damaged_bucket_is_read_as_far_as_it_goes_and_written_whole_again(
    tmp_path: Path,
) -> None:
    state = State(tmp_path, API, key="k")
    state.save_applied("shop", ["a:1"])
    bucket = tmp_path / "applied" / f"{collection_key(API, 'shop')[:2]}.txt"
    bucket.write_bytes(bucket.read_bytes() + b"\xff\xfe garbage\n@short\n")
    again = State(tmp_path, API, key="k")
    found = again.load_applied("shop")
    assert found is not None and found[0] == "a:1"
    again.save_applied("shop", ["b:2"])
    assert State(tmp_path, API, key="k").load_applied("shop") == ["b:2"]
    assert "short" not in bucket.read_text()  # the damage is not carried over
