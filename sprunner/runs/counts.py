"""A run's four counts, named once: what a run answer, a report's run, the final counts
after retries and a verdict all carry (SPEC §5), copied from one to the other here only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

# What carries them: a run answer, a report's run, final counts, a verdict.
from sprunner.results.apitypes import RunProgress as Counted


class Counts(TypedDict):
    total_requests: int
    success_requests: int
    failed_requests: int
    timeout_requests: int


def counts_of(source: Counted | None) -> Counts:
    """The counts `source` carries; all 0 for none (a run never seen)."""
    if source is None:
        return Counts(total_requests=0, success_requests=0, failed_requests=0, timeout_requests=0)
    return Counts(
        total_requests=source.total_requests,
        success_requests=source.success_requests,
        failed_requests=source.failed_requests,
        timeout_requests=source.timeout_requests,
    )


def counts_in(document: Mapping[str, Any]) -> Counts:
    """The counts of a run as a report's JSON gives them (a missing one is 0)."""
    return Counts(
        total_requests=int(document.get("total_requests", 0)),
        success_requests=int(document.get("success_requests", 0)),
        failed_requests=int(document.get("failed_requests", 0)),
        timeout_requests=int(document.get("timeout_requests", 0)),
    )
