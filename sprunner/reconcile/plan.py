"""The plan: desired collections + the remote list + the state → what to do, as data.

No I/O happens here, so every reconcile decision is a unit test with plain values.

Rules (SPEC §4):
- identity is the name; the remote list decides what exists, the state only remembers
  what was last applied there;
- absent remotely → create; present once → update unless the state's fingerprint for
  that very id equals the desired one; present more than once → an error for that
  collection only, naming the ids;
- remote collections that sprunner created (state) and no loaded file declares → delete,
  acted on only with --prune; every other remote collection is unmanaged and never touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sprunner.api.models import CollectionRef
from sprunner.jobfile.model import DesiredCollection
from sprunner.state import Entry, Hasher

PlanAction = Literal["create", "update", "unchanged", "delete", "error", "skip"]


@dataclass(frozen=True)
class RequestDiff:
    added: int
    removed: int
    changed: int

    def __str__(self) -> str:
        return f"+{self.added} -{self.removed} ~{self.changed}"


@dataclass(frozen=True)
class PlannedCollection:
    name: str
    action: PlanAction
    reason: str
    desired: DesiredCollection | None = None
    remote_id: str | None = None
    diff: RequestDiff | None = None  # None when what was applied before is unknown

    @property
    def requests(self) -> int:
        return 0 if self.desired is None else len(self.desired.requests)

    @property
    def credits(self) -> int:
        return 0 if self.desired is None else self.desired.credits


@dataclass(frozen=True)
class Plan:
    items: tuple[PlannedCollection, ...]
    unmanaged: tuple[CollectionRef, ...]
    prune: bool

    def of(self, action: PlanAction) -> tuple[PlannedCollection, ...]:
        return tuple(item for item in self.items if item.action == action)

    @property
    def has_changes(self) -> bool:
        actions = {"create", "update"} | ({"delete"} if self.prune else set())
        return any(item.action in actions for item in self.items)

    @property
    def credits(self) -> int:
        """What one run of every desired collection costs."""
        return sum(item.credits for item in self.items if item.action != "delete")


def request_digest(request: Mapping[str, Any], hasher: Hasher) -> str:
    """`key:content`, keyed (no secret can be guessed from the state): the key follows a
    request across edits (custom_id, else url)."""
    return hasher.request_digest(request)


def diff_requests(before: Iterable[str], after: Iterable[str]) -> RequestDiff:
    def by_key(digests: Iterable[str]) -> dict[str, set[str]]:
        keyed: dict[str, set[str]] = defaultdict(set)
        for digest in digests:
            key, _, content = digest.partition(":")
            keyed[key].add(content)
        return keyed

    old, new = by_key(before), by_key(after)
    added = sum(len(new[k]) for k in new.keys() - old.keys())
    removed = sum(len(old[k]) for k in old.keys() - new.keys())
    changed = sum(1 for k in new.keys() & old.keys() if new[k] != old[k])
    return RequestDiff(added=added, removed=removed, changed=changed)


def build_plan(
    desired: Sequence[DesiredCollection],
    remote: Sequence[CollectionRef],
    entries: Mapping[str, Entry],
    *,
    hasher: Hasher,
    declared: Iterable[str],
    applied: Mapping[str, Sequence[str]] | None = None,
    prune: bool = False,
) -> Plan:
    """Decide, for each desired collection and each pruneable one, what apply would do.

    `declared` holds every name of every loaded file (selected or not): a collection left
    out by --select or --shard is not undeclared and is never a delete candidate.
    `applied` maps names to the request digests last applied (for the diff column).
    `hasher` is the state's (`state.hasher`): fingerprints are compared keyed.
    """
    remote_ids: dict[str, list[str]] = defaultdict(list)
    for ref in remote:
        remote_ids[ref.name].append(ref.id)
    applied = applied or {}
    items: list[PlannedCollection] = []

    for collection in desired:
        name = collection.name
        ids = remote_ids.get(name, [])
        entry = entries.get(name)
        if not collection.requests:
            items.append(PlannedCollection(name, "skip", "expands to no request", collection))
            continue
        if len(ids) > 1:
            reason = f"{len(ids)} remote collections share this name: {', '.join(ids)}"
            items.append(PlannedCollection(name, "error", reason, collection))
            continue
        new_digests = [hasher.request_digest(r) for r in collection.requests]
        old_digests = applied.get(name)
        diff = None if old_digests is None else diff_requests(old_digests, new_digests)
        if not ids:
            reason = "not found remotely" if entry is None else "gone remotely; creating again"
            added = RequestDiff(len(new_digests), 0, 0)
            items.append(PlannedCollection(name, "create", reason, collection, None, added))
            continue
        remote_id = ids[0]
        if entry is not None and entry.id == remote_id and entry.fingerprint is not None:
            if entry.fingerprint == hasher.fingerprint(collection):
                items.append(PlannedCollection(name, "unchanged", "", collection, remote_id))
            else:
                items.append(
                    PlannedCollection(
                        name, "update", "content changed", collection, remote_id, diff
                    )
                )
        else:
            reason = "what was last applied is unknown"
            items.append(PlannedCollection(name, "update", reason, collection, remote_id, None))

    declared_names = set(declared)
    for name, entry in sorted(entries.items()):
        if name in declared_names or not entry.created:
            continue
        for remote_id in remote_ids.get(name, []):
            if remote_id == entry.id:
                items.append(
                    PlannedCollection(
                        name,
                        "delete",
                        "created by sprunner; no job file declares it",
                        None,
                        remote_id,
                    )
                )

    managed = {name for name in entries} | declared_names
    unmanaged = tuple(ref for ref in remote if ref.name not in managed)
    return Plan(items=tuple(items), unmanaged=unmanaged, prune=prune)
