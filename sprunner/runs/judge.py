"""Judging a completed run against its collection's `max_failed` (SPEC §3, exit code 1).

The one place that decides whether a run's failed and timed-out jobs are within what the
job file allows, and says so in one log line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sprunner.track import Finished

if TYPE_CHECKING:
    from sprunner.api.models import Run
    from sprunner.jobfile.model import DesiredCollection
    from sprunner.ui import Output


def judge(output: Output, name: str, desired: DesiredCollection, run: Run) -> Finished:
    """The `Finished` result of a completed run: within `max_failed`, or why not."""
    bad = run.failed_requests + run.timeout_requests
    line = (
        f"{name}: run {run.run_id} completed: {run.success_requests}/"
        f"{run.total_requests} ok, {run.failed_requests} failed, "
        f"{run.timeout_requests} timed out"
    )
    max_failed = desired.run.max_failed
    if max_failed.allows(bad, run.total_requests):
        output.info(line)
        return Finished(run, "completed")
    output.error(f"{line} (over max_failed {max_failed})")
    reason = f"{bad} failed or timed-out jobs; max_failed is {max_failed}"
    return Finished(run, "completed", reason)
