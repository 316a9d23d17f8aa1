"""Exact duplicate detection among a collection's rendered requests (SPEC §2: identical
requests are sent once, the first one kept).

Two levels of digests, no full key kept (a frozenset per request was half the memory of a
5,000,000-request validate, issue #17):

- every request is first told apart by the hash of its `url` alone: cheap (the string's
  hash is computed once anyway), and in the common case every URL differs;
- requests whose URLs hash alike (the same URL with other fields that differ, or a hash
  collision) are told apart within that group by `digest`, a hash of the whole content;
- a request is dropped only after comparing it with a kept one that has both the same
  URL hash and the same digest: a collision costs a comparison, never a request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Dedup:
    """Appends to `kept` each request not equal to one kept before."""

    __slots__ = ("digest", "first", "groups", "kept")

    def __init__(self, kept: list[dict[str, Any]], digest: Callable[[dict[str, Any]], int]) -> None:
        self.kept = kept
        self.digest = digest  # of the whole content: equal requests, equal digests
        self.first: dict[int, int] = {}  # URL hash -> index in kept of the first with it
        self.groups: dict[int, dict[int, list[int]]] = {}  # URL hash -> digest -> indexes

    def add(self, request: dict[str, Any]) -> bool:
        """Keep `request` unless an equal one is kept already; True when it was kept."""
        kept = self.kept
        try:
            quick = hash(request["url"])
        except (KeyError, TypeError):  # not after the url check; the digests then decide
            quick = 0
        first = self.first.setdefault(quick, len(kept))
        if first == len(kept):
            kept.append(request)
            return True
        group = self.groups.get(quick)
        if group is None:
            group = self.groups[quick] = {self.digest(kept[first]): [first]}
        same = group.setdefault(self.digest(request), [])
        if any(kept[index] == request for index in same):
            return False
        same.append(len(kept))
        kept.append(request)
        return True
