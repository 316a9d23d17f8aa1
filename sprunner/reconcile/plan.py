"""The plan: desired collections + the remote list + the state → what to do, as data.

No I/O happens here, so every reconcile decision is a unit test with plain values.

Rules (SPEC §4):
- identity is the name; the remote list decides what exists, the state only remembers
  what was last applied there;
- absent remotely → create; present once → update unless the state's fingerprint for
  that very id equals the desired one; present more than once → an error for that
  collection only, naming the ids;
- remote collections that sprunner created (state), whose recorded declaring file lies
  under the paths of this apply (`scope.py`) and that no loaded file declares → delete
  with --prune; without it they are `not_pruned` (shown, never acted on). What files
  elsewhere declare is neither (a collection without a recorded file never is); every
  other remote collection is unmanaged and never touched;
- a retry companion `<name>.retry` (SPEC §8: marked in the state, or by its name next to
  a managed parent) is never unmanaged: `plan` lists it as its parent's companion, and
  it is deleted with its parent (--prune), never on its own while the parent is declared.

The plan holds what apply will do (`items`), so no reader re-checks `--prune`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sprunner.api.models import CollectionRef
from sprunner.jobfile.model import DesiredCollection
from sprunner.reconcile.actions import Action
from sprunner.reconcile.scope import covers
from sprunner.state import Entry, Hasher

RETRY_SUFFIX = ".retry"  # the companion's name is its parent's plus this (retry/companion.py)


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
    action: Action
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
class Companion:
    """A retry companion that exists remotely and stays (its parent is declared)."""

    name: str
    parent: str
    remote_id: str


@dataclass(frozen=True)
class Plan:
    items: tuple[PlannedCollection, ...]  # what apply does, in file order, deletions last
    unmanaged: tuple[CollectionRef, ...]
    not_pruned: tuple[PlannedCollection, ...] = ()  # deletions left for --prune
    companions: tuple[Companion, ...] = ()  # retry companions kept with their parents

    def of(self, action: Action) -> tuple[PlannedCollection, ...]:
        return tuple(item for item in self.items if item.action == action)

    def in_file_order(self) -> tuple[PlannedCollection, ...]:
        """Everything planned, deletions not pruned included (they come last either way)."""
        return self.items + self.not_pruned

    def without_deletions(self) -> Plan:
        """The plan with its deletions left for a later --prune (a declined question)."""
        kept = tuple(item for item in self.items if item.action != "delete")
        return replace(self, items=kept, not_pruned=self.not_pruned + self.of("delete"))

    @property
    def has_changes(self) -> bool:
        return any(item.action in ("create", "update", "delete") for item in self.items)

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
    scope: Sequence[str] = (),
) -> Plan:
    """Decide, for each desired collection and each pruneable one, what apply would do.

    `declared` holds every name of every loaded file (selected or not): a collection left
    out by --select or --shard is not undeclared and is never a delete candidate.
    `scope`: the paths of this apply (`scope.where`); only a collection whose recorded
    declaring file lies under them is a delete candidate (none without a scope).
    `applied` maps names to the request digests last applied (for the diff column).
    `hasher` is the state's (`state.hasher`): fingerprints are compared keyed.
    """
    remote_ids: dict[str, list[str]] = defaultdict(list)
    for ref in remote:
        remote_ids[ref.name].append(ref.id)
    retried = {c.name + RETRY_SUFFIX: c.name for c in desired if c.run.retry.attempts > 0}
    items = [
        _clash(c, retried[c.name])
        if c.name in retried
        else _plan_one(
            c, remote_ids.get(c.name, []), entries.get(c.name), (applied or {}).get(c.name), hasher
        )
        for c in desired
    ]
    declared_names = set(declared)
    deletions = tuple(_deletions(entries, remote_ids, declared_names, scope))
    managed = {name for name in entries} | declared_names
    parents = _companions(remote, entries, managed, declared_names)
    unmanaged = tuple(ref for ref in remote if ref.name not in managed and ref.name not in parents)
    deleted = {item.name for item in deletions}
    companions = tuple(
        Companion(ref.name, parents[ref.name], ref.id)
        for ref in remote
        if ref.name in parents and ref.name not in deleted
    )
    if prune:
        return Plan(items=(*items, *deletions), unmanaged=unmanaged, companions=companions)
    return Plan(
        items=tuple(items), unmanaged=unmanaged, not_pruned=deletions, companions=companions
    )


def _companions(
    remote: Sequence[CollectionRef],
    entries: Mapping[str, Entry],
    managed: set[str],
    declared: set[str],
) -> dict[str, str]:
    """Remote retry companions -> their parents: marked in the state, or (a lost state)
    named `<parent>.retry` beside a managed parent. A declared name is never a companion."""
    found: dict[str, str] = {}
    for ref in remote:
        if ref.name in declared:
            continue
        entry = entries.get(ref.name)
        if entry is not None and entry.companion_of is not None:
            found[ref.name] = entry.companion_of
        elif ref.name.endswith(RETRY_SUFFIX) and ref.name[: -len(RETRY_SUFFIX)] in managed:
            found[ref.name] = ref.name[: -len(RETRY_SUFFIX)]
    return found


def _clash(collection: DesiredCollection, parent: str) -> PlannedCollection:
    """A declared collection named like the retry companion of one that retries."""
    reason = f"the name is that of the retry companion of {parent} (run.retry): rename one of them"
    return PlannedCollection(collection.name, "error", reason, collection)


def _plan_one(
    collection: DesiredCollection,
    ids: Sequence[str],
    entry: Entry | None,
    old_digests: Sequence[str] | None,
    hasher: Hasher,
) -> PlannedCollection:
    """What apply does with one desired collection."""
    name = collection.name
    if not collection.requests:
        return PlannedCollection(name, "skip", "expands to no request", collection)
    if len(ids) > 1:
        reason = f"{len(ids)} remote collections share this name: {', '.join(ids)}"
        return PlannedCollection(name, "error", reason, collection)
    if not ids:
        reason = "not found remotely" if entry is None else "gone remotely; creating again"
        added = RequestDiff(len(collection.requests), 0, 0)
        return PlannedCollection(name, "create", reason, collection, None, added)
    remote_id = ids[0]
    if entry is not None and entry.id == remote_id and entry.fingerprint is not None:
        if entry.fingerprint == hasher.fingerprint(collection):
            return PlannedCollection(name, "unchanged", "", collection, remote_id)
        # Request digests only where a diff is shown: made once (the apply records them).
        diff = None
        if old_digests is not None:
            diff = diff_requests(old_digests, hasher.request_digests(collection))
        return PlannedCollection(name, "update", "content changed", collection, remote_id, diff)
    reason = "what was last applied is unknown"
    return PlannedCollection(name, "update", reason, collection, remote_id, None)


def _deletions(
    entries: Mapping[str, Entry],
    remote_ids: Mapping[str, list[str]],
    declared: set[str],
    scope: Sequence[str],
) -> Iterator[PlannedCollection]:
    """Remote collections sprunner created from a file under `scope` that no loaded file
    declares, by name; a retry companion goes with its parent (when the parent goes, or is
    gone), never alone, and is scoped by its parent's file."""
    for name, entry in sorted(entries.items()):
        if name in declared or not entry.created:
            continue
        file = entry.file
        reason = f"created by sprunner from {file}, which no longer declares it"
        if entry.companion_of is not None:
            parent = entries.get(entry.companion_of)
            if entry.companion_of in declared or (parent is not None and not parent.created):
                continue
            file = parent.file if parent is not None and parent.file else file
            reason = f"retry companion of {entry.companion_of}, deleted with it"
        if not covers(scope, file):
            continue
        for remote_id in remote_ids.get(name, []):
            if remote_id == entry.id:
                yield PlannedCollection(name, "delete", reason, None, remote_id)
