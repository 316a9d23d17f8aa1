"""Where the results stage keeps its progress in the state (blob kinds), and what is pending.

Kinds, per collection name (`StateStore.get_blob/put_blob`):
- `results`: the collection's current drain: `{checkpoint, report, held}`. `held`: drained
  whole, its file waiting for the retries' fold (`retry/results.py`); `report`: what
  the report shows once published.
- `results.retry`: the staged drains of the current run's retry runs.
- `results.pending`: `{run_id: entry}`, drains a newer run displaced before they were
  finished (a full disk, an unreachable store, a run we stopped waiting for). A held
  entry carries its `results.retry` value along (`staged`).

Invariant (SPEC §10, "Data is never lost or wrong"): a drain is journaled before its first
file is opened and stays in the state until its file is published, so rows that could not
be written are pending in the state until an apply finishes them (`pending_results`),
and never dropped to make room for a newer run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sprunner.results.checkpoint import DrainCheckpoint

RESULTS = "results"
STAGED = "results.retry"
PENDING = "results.pending"
COMPANION = ".retry"  # `sprunner retry` journals a companion run's drain under <name>.retry


class Blobs(Protocol):
    """The part of the state store the results stage uses."""

    def get_blob(self, name: str, kind: str) -> Any: ...

    def put_blob(self, name: str, kind: str, value: Any, *, durable: bool = True) -> None: ...


@dataclass(frozen=True)
class Entry:
    """One run's drain as journaled."""

    checkpoint: DrainCheckpoint
    report: Mapping[str, Any] | None = None
    held: bool = False
    staged: Mapping[str, Any] | None = None  # a displaced drain: its retries' stages
    total: int | None = None  # the run's jobs, once seen completed by a drain that failed

    @property
    def finished(self) -> bool:
        return self.checkpoint.finished

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"checkpoint": self.checkpoint.to_json()}
        value.update(report=self.report, held=self.held)
        if self.staged is not None:
            value["staged"] = dict(self.staged)
        if self.total is not None:
            value["total"] = self.total
        return value

    @classmethod
    def from_json(cls, value: Any) -> Entry | None:
        checkpoint = (
            DrainCheckpoint.read(value.get("checkpoint")) if isinstance(value, Mapping) else None
        )
        if checkpoint is None:
            return None
        report, staged, total = value.get("report"), value.get("staged"), value.get("total")
        return cls(
            checkpoint,
            report if isinstance(report, Mapping) else None,
            bool(value.get("held", False)),
            staged if isinstance(staged, Mapping) else None,
            total if isinstance(total, int) and not isinstance(total, bool) else None,
        )


class Slot(Protocol):
    """Where one drain's entry is kept."""

    def load(self) -> Entry | None: ...

    def save(self, entry: Entry) -> None: ...


@dataclass(frozen=True)
class CurrentSlot:
    """The `results` blob of `name`: the drain of its current (or last) run."""

    blobs: Blobs
    name: str

    def load(self) -> Entry | None:
        return Entry.from_json(self.blobs.get_blob(self.name, RESULTS))

    def save(self, entry: Entry) -> None:
        self.blobs.put_blob(self.name, RESULTS, entry.to_json(), durable=True)


@dataclass(frozen=True)
class PendingSlot:
    """One entry of `name`'s `results.pending` map; a finished entry leaves the map."""

    blobs: Blobs
    name: str
    run_id: str

    def load(self) -> Entry | None:
        return Entry.from_json(_pending_map(self.blobs, self.name).get(self.run_id))

    def save(self, entry: Entry) -> None:
        entries = _pending_map(self.blobs, self.name)
        if entry.finished:
            entries.pop(self.run_id, None)
        else:
            entries[self.run_id] = entry.to_json()
        self.blobs.put_blob(self.name, PENDING, entries or None, durable=True)


def _pending_map(blobs: Blobs, name: str) -> dict[str, Any]:
    value = blobs.get_blob(name, PENDING)
    return dict(value) if isinstance(value, Mapping) else {}


def displace(
    blobs: Blobs, name: str, entry: Entry, *, retry_runs: Mapping[int, str] | None = None
) -> None:
    """Keep an unfinished drain that a newer run's drain is about to replace. It takes its
    retries' stages along, and every retry run its ledger knows (`retry_runs`: attempt ->
    run id, from the caller) that has no stage yet, so that its fold can still drain
    them: the stages and the ledger are about to be the newer run's. A drain that failed
    before its retries (not held) takes them too: its fold follows once it is drained."""
    if entry.staged is None and (entry.held or retry_runs):
        staged = blobs.get_blob(name, STAGED)
        run_id = entry.checkpoint.run_id
        ours = isinstance(staged, Mapping) and staged.get("parent_run") == run_id
        attempts = dict(staged.get("attempts") or {}) if ours else {}
        for attempt, retry_run in (retry_runs or {}).items():
            attempts.setdefault(str(attempt), {"run_id": retry_run, "settled": False})
        entry = replace(entry, staged={"parent_run": run_id, "attempts": attempts})
    PendingSlot(blobs, name, entry.checkpoint.run_id).save(entry)


def unfinished(blobs: Blobs, name: str) -> list[tuple[Slot, Entry]]:
    """Every drain of `name` (and of its `sprunner retry` companion) not yet published:
    the current one first, then the displaced ones."""
    found: list[tuple[Slot, Entry]] = []
    for journal in (name, name + COMPANION):
        current = CurrentSlot(blobs, journal)
        entry = current.load()
        if entry is not None and not entry.finished:
            found.append((current, entry))
        for run_id in sorted(_pending_map(blobs, journal)):
            slot = PendingSlot(blobs, journal, run_id)
            entry = slot.load()
            if entry is not None and not entry.finished:
                found.append((slot, entry))
    return found


@dataclass(frozen=True)
class PendingResults:
    """A run whose results file is not published yet (what `status` and reports show)."""

    run_id: str
    data: str  # where the file will go (the report masks env() values)
    lines: int  # rows durably staged so far
    held: bool  # drained whole, waiting for the fold of its retries


def pending_results(blobs: Blobs, name: str) -> tuple[PendingResults, ...]:
    """The runs of collection `name` whose results are still pending, for `sprunner status`
    and the report: an apply finishes them (SPEC §10)."""
    return tuple(
        PendingResults(e.checkpoint.run_id, e.checkpoint.data, e.checkpoint.lines, e.held)
        for _, e in unfinished(blobs, name)
    )
