"""Frozen models of the API's answers.

Parsing is tolerant of extra fields (the API grows) and strict about missing ones: a
missing field raises `BadAnswerError` naming the call, never a KeyError later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

RunStatus = Literal["in_progress", "completed"]


@dataclass(frozen=True)
class CollectionRef:
    """A collection as the API lists it: it never returns the request list."""

    id: str
    name: str


@dataclass(frozen=True)
class WriteResult:
    """Answer of create / update: the collection plus what the API said about the body."""

    id: str
    name: str
    message: str = ""
    duplicates_skipped: int = 0
    blocked_urls: tuple[str, ...] = ()
    invalid_items: tuple[Any, ...] = ()


@dataclass(frozen=True)
class FailedJob:
    job_id: str
    url: str
    status: str
    error: str


@dataclass(frozen=True)
class Run:
    run_id: str
    collection_id: str
    status: RunStatus
    total_requests: int
    success_requests: int
    failed_requests: int
    timeout_requests: int
    failed_jobs: tuple[FailedJob, ...] = ()
    created_at: float | None = None

    @property
    def done(self) -> bool:
        return self.status == "completed"
