"""The values the state holds, whatever the engine: entries, run records, lock holders.

An `Entry` is what sprunner remembers about one collection of one API URL. Every field is
a cache of something the API knows, a one-way keyed hash (see `hashing.py`) or a path:
losing an entry costs at most one PUT and one run of a `when: changed` collection, never
a duplicate. Its JSON form (`entry_to_json`) is the export document's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sprunner.state.hashing import Hasher


@dataclass(frozen=True)
class RunRecord:
    run_id: str | None  # None while a start is pending: the POST was sent, no answer yet
    started_at: float  # local clock, epoch seconds, taken just before the POST
    # Keyed fingerprint of the content the run was started with; None: unknown (a run
    # someone else started, or one recorded by an older sprunner).
    content: str | None = None


@dataclass(frozen=True)
class Entry:
    """What the state knows about one collection."""

    id: str
    fingerprint: str | None = None  # keyed; of what was last applied; None = unknown
    created: bool = False  # sprunner created it: only these may be pruned
    last_run: RunRecord | None = None  # the newest run known to have been started
    inflight: RunRecord | None = None  # a run started (or pending) and not yet seen to its end
    # A create was sent and never confirmed (the apply died waiting): if the name shows up
    # remotely, sprunner made it, and it may be pruned like any collection it created.
    creating: bool = False
    # Keyed fingerprint of the content the last *started* run ran with (`when: changed`);
    # None = unknown, which counts as changed.
    started_fingerprint: str | None = None
    # The parent's name when this is the retry companion `<parent>.retry` (SPEC section 8):
    # never unmanaged, pruned with its parent, never planned from a job file.
    companion_of: str | None = None
    # The job file that declares it (`reconcile/scope.py` form): --prune deletes only what
    # a file under the apply's paths declared. None: unknown (an older state): never pruned.
    file: str | None = None

    def created_by_sprunner(self, remote_id: str) -> bool:
        """Whether the remote collection `remote_id` is one sprunner created."""
        return self.created if self.id == remote_id else self.creating

    @property
    def known_run_ids(self) -> set[str]:
        return {r.run_id for r in (self.last_run, self.inflight) if r and r.run_id}


@dataclass(frozen=True)
class LockHolder:
    """Who holds a collection's lock (shared engines only): for "handled by" messages."""

    apply_id: str
    host: str
    pid: int

    def __str__(self) -> str:
        return f"apply {self.apply_id} on {self.host}"


def entry_to_json(entry: Entry) -> dict[str, Any]:
    """The export document's form of an entry (its fields, run records as objects)."""
    return asdict(entry)


def entry_from_json(data: Mapping[str, Any], hasher: Hasher | None = None) -> Entry:
    """Parse an entry; with a `hasher`, fingerprints made with another key become unknown.

    That covers the unkeyed fingerprints of state version 1 and a changed API key alike:
    each costs one PUT (and one run of a `when: changed` collection), never an error.
    """

    def keyed(value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        return value if hasher is None or hasher.owns(value) else None

    def run(value: Any) -> RunRecord | None:
        if value is None:
            return None
        return RunRecord(
            value.get("run_id"), float(value["started_at"]), keyed(value.get("content"))
        )

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    return Entry(
        id=str(data["id"]),
        fingerprint=keyed(data.get("fingerprint")),
        created=bool(data.get("created", False)),
        last_run=run(data.get("last_run")),
        inflight=run(data.get("inflight")),
        creating=bool(data.get("creating", False)),
        started_fingerprint=keyed(data.get("started_fingerprint")),
        companion_of=text(data.get("companion_of")),
        file=text(data.get("file")),
    )
