"""What the state keeps of the results stage, and what it says is pending."""

from __future__ import annotations

from typing import Any

from sprunner.results.checkpoint import DrainCheckpoint
from sprunner.results.journal import (
    PENDING,
    STAGED,
    CurrentSlot,
    Entry,
    PendingSlot,
    displace,
    pending_results,
)
from sprunner.results.layout import result_paths


class Blobs:
    """The two blob calls of a state store, in a dict (the journal is what is tested)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    def get_blob(self, name: str, kind: str) -> Any:
        return self.values.get((name, kind))

    def put_blob(self, name: str, kind: str, value: Any, *, durable: bool = True) -> None:
        if value is None:
            self.values.pop((name, kind), None)
        else:
            self.values[(name, kind)] = value


def _checkpoint(run_id: str, lines: int = 0) -> DrainCheckpoint:
    paths = result_paths("/r", collection="shop", run_id=run_id, started=0, format="jsonl")
    fresh = DrainCheckpoint.fresh(run_id, paths, collection_id="c", run_started_at="t")
    return DrainCheckpoint.from_json({**fresh.to_json(), "lines": lines})


def test_a_drain_displaced_by_a_newer_run_stays_pending_until_published() -> None:
    blobs = Blobs()
    current = CurrentSlot(blobs, "shop")
    current.save(Entry(_checkpoint("r1", lines=7)))
    assert [p.run_id for p in pending_results(blobs, "shop")] == ["r1"]

    displace(blobs, "shop", current.load())  # type: ignore[arg-type]
    current.save(Entry(_checkpoint("r2")))
    assert [(p.run_id, p.lines) for p in pending_results(blobs, "shop")] == [("r2", 0), ("r1", 7)]

    slot = PendingSlot(blobs, "shop", "r1")
    entry = slot.load()
    assert entry is not None and entry.checkpoint.lines == 7
    finished = DrainCheckpoint.from_json({**entry.checkpoint.to_json(), "finished": True})
    slot.save(Entry(finished, {"lines": 7}))
    assert blobs.get_blob("shop", PENDING) is None, "a published entry leaves the map"
    assert [p.run_id for p in pending_results(blobs, "shop")] == ["r2"]


def test_a_held_drain_carries_its_retries_stages_when_displaced() -> None:
    blobs = Blobs()
    blobs.put_blob("shop", STAGED, {"parent_run": "r1", "attempts": {"1": {"run_id": "x"}}})
    displace(blobs, "shop", Entry(_checkpoint("r1"), held=True))
    entry = PendingSlot(blobs, "shop", "r1").load()
    assert entry is not None and entry.held and entry.staged == blobs.get_blob("shop", STAGED)
    assert [p.held for p in pending_results(blobs, "shop")] == [True]


def test_a_companion_runs_drain_counts_for_its_collection() -> None:
    blobs = Blobs()
    CurrentSlot(blobs, "shop.retry").save(Entry(_checkpoint("c1")))
    assert [p.run_id for p in pending_results(blobs, "shop")] == ["c1"]


def test_an_entry_of_another_version_is_not_read() -> None:
    blobs = Blobs()
    blobs.put_blob("shop", "results", {"checkpoint": {"version": 99}})
    assert CurrentSlot(blobs, "shop").load() is None and pending_results(blobs, "shop") == ()
