"""Exact duplicate detection among a collection's rendered requests (SPEC §2: identical
requests are sent once, the first one kept).

It keeps one int digest per request, not a copy of its key: keeping the full keys (a
frozenset per request) was half the memory of a 5,000,000-request validate (issue #17).
A digest alone could drop a distinct request on a hash collision, so an equal digest is
always confirmed by comparing with the kept request itself: a collision costs a
comparison, never a request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Dedup:
    """Appends to `kept` each request not equal to one kept before."""

    __slots__ = ("clashes", "digest", "first", "kept")

    def __init__(self, kept: list[dict[str, Any]], digest: Callable[[dict[str, Any]], int]) -> None:
        self.kept = kept
        self.digest = digest  # equal requests must have equal digests
        self.first: dict[int, int] = {}  # digest -> index in kept
        self.clashes: dict[int, list[int]] = {}  # digest -> later distinct requests

    def add(self, request: dict[str, Any]) -> bool:
        """Keep `request` unless an equal one is kept already; True when it was kept."""
        kept = self.kept
        digest = self.digest(request)
        first = self.first.setdefault(digest, len(kept))
        if first != len(kept):
            others = self.clashes.get(digest, ())
            if kept[first] == request or any(kept[i] == request for i in others):
                return False
            self.clashes.setdefault(digest, []).append(len(kept))
        kept.append(request)
        return True
