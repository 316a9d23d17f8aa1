"""`--select` and `--shard`: pure functions over already loaded collections.

Selection keeps the files' order. Sharding hashes the name with sha256, so every host of
a fleet computes the same split without talking to the others, and adding a collection
moves only that collection.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from sprunner.errors import UsageError
from sprunner.settings import Shard


class Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def tags(self) -> tuple[str, ...]: ...


C = TypeVar("C", bound=Named)


def matches(collection: Named, selector: str) -> bool:
    """A name, a shell glob on the name, or `tag:NAME` (NAME may be a glob too)."""
    if selector.startswith("tag:"):
        pattern = selector[len("tag:") :]
        return any(fnmatch.fnmatchcase(tag, pattern) for tag in collection.tags)
    return fnmatch.fnmatchcase(collection.name, selector)


def select(collections: Sequence[C], selectors: Iterable[str]) -> tuple[C, ...]:
    """The collections any selector matches; all of them when there is no selector.

    A selector that matches nothing is a usage error: a typo in a cron job should fail
    loudly rather than silently do nothing.
    """
    selectors = tuple(selectors)
    if not selectors:
        return tuple(collections)
    unmatched = [s for s in selectors if not any(matches(c, s) for c in collections)]
    if unmatched:
        names = ", ".join(c.name for c in collections) or "(none)"
        tags = sorted({t for c in collections for t in c.tags})
        known = f"known collections: {names}" + (f"; tags: {', '.join(tags)}" if tags else "")
        quoted = ", ".join(repr(s) for s in unmatched)
        raise UsageError(f"--select {quoted} matches no collection ({known})")
    return tuple(c for c in collections if any(matches(c, s) for s in selectors))


def shard_of(name: str, count: int) -> int:
    """The 1-based shard a collection name falls in."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count + 1


def shard(collections: Sequence[C], part: Shard | None) -> tuple[C, ...]:
    if part is None:
        return tuple(collections)
    return tuple(c for c in collections if shard_of(c.name, part.count) == part.index)
