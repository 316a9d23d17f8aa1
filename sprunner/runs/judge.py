"""Judging (SPEC §3, §8, §9): a run against its collection's `max_failed`, and each
collection at the end of its way through an apply (the lifecycle's "judged" step).

- `judge`: a completed run within `max_failed` or not, said in one log line. The line's
  level follows the *final* verdict: a run whose failed jobs are retried is logged at
  info (`run_completed`), and its verdict comes after the retries (`after_retries`).
- `judged`: the latest verdict of a collection (`sprunner.runs.verdict`). A run seen to its end
  here records its own; a collection this apply skipped keeps the one recorded before, and
  its health (a failed last run, or stale by `run.max_age`) is said with the reason why no
  run came now, in the words the plan, the report and `status` use.

Every line carries its event name and counts as fields (`--log-format json`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sprunner.apply.track import Finished, Judged
from sprunner.runs import verdict
from sprunner.runs.credits import charged_for

if TYPE_CHECKING:
    from sprunner.api.models import Run
    from sprunner.apply.track import Track
    from sprunner.jobfile.model import DesiredCollection
    from sprunner.output.ui import Output
    from sprunner.report.outcome import RunOutcome
    from sprunner.runs.verdict import BlobStore


def counts(success: int, total: int, failed: int, timeout: int) -> str:
    """`9/10 ok, 1 failed, 0 timed out`: the one way counts are worded."""
    return f"{success}/{total} ok, {failed} failed, {timeout} timed out"


def _fields(name: str, run_id: str, success: int, total: int, failed: int, timeout: int) -> Any:
    return {
        "collection": name,
        "run_id": run_id,
        "total_requests": total,
        "success_requests": success,
        "failed_requests": failed,
        "timeout_requests": timeout,
    }


def judge(
    output: Output, name: str, desired: DesiredCollection, run: Run, *, retrying: bool = False
) -> Finished:
    """The `Finished` result of a completed run: within `max_failed`, or why not. With
    `retrying`, its failed jobs are retried next: the verdict waits for them."""
    bad = run.failed_requests + run.timeout_requests
    numbers = (run.success_requests, run.total_requests, run.failed_requests)
    line = f"{name}: run {run.run_id} completed: {counts(*numbers, run.timeout_requests)}"
    fields = _fields(name, run.run_id, *numbers, run.timeout_requests)
    if retrying:
        output.info(f"{line}; retrying {bad}", event="run_completed", **fields)
        return Finished(run, "completed")
    max_failed = desired.run.max_failed
    credits = charged_for(desired.requests, ((j.url, j.custom_id) for j in run.failed_jobs))
    finished = {**fields, "status": "completed", "retries": 0, "credits": credits}
    if max_failed.allows(bad, run.total_requests):
        output.info(line, event="run_finished", ok=True, **finished)
        return Finished(run, "completed")
    output.error(
        f"{line} (over max_failed {max_failed})", event="run_finished", ok=False, **finished
    )
    reason = f"{bad} failed or timed-out jobs; max_failed is {max_failed}"
    return Finished(run, "completed", reason)


def timed_out(output: Output, name: str, run: Run, reason: str) -> Finished:
    """A run given up on at its `timeout` (it goes on remotely): a failed verdict."""
    numbers = (run.success_requests, run.total_requests, run.failed_requests)
    output.error(
        f"{name}: run {run.run_id} {reason}",
        event="run_finished",
        ok=False,
        status="timed_out",
        **_fields(name, run.run_id, *numbers, run.timeout_requests),
    )
    return Finished(run, "timed_out", reason)


def after_retries(output: Output, name: str, run: RunOutcome) -> None:
    """The verdict of a run whose failed jobs were retried: the final counts."""
    final = run.final or run
    numbers = (final.success_requests, final.total_requests, final.failed_requests)
    tries = len(run.retries)
    text = (
        f"{name}: run {run.run_id} finished after {tries} retr{'y' if tries == 1 else 'ies'}: "
        f"{counts(*numbers, final.timeout_requests)}"
    )
    fields = {
        **_fields(name, run.run_id or "", *numbers, final.timeout_requests),
        "status": run.status,
        "retries": tries,
        "credits": run.credits,
    }
    if run.ok:
        output.info(text, event="run_finished", ok=True, **fields)
    else:
        output.error(f"{text} ({run.reason})", event="run_finished", ok=False, **fields)


def judged(state: BlobStore, track: Track, *, now: float, output: Output) -> Judged:
    """The collection's latest verdict after this apply, and its health when this apply
    did not run it to its end (skipped by its policy, or `--no-run`)."""
    desired = track.item.desired
    if track.action == "delete":
        verdict.forget(state, track.name)
    if desired is None or track.action in (None, "error", "skip", "delete"):
        return Judged(None)
    run = track.outcome().run
    made = None if run is None else verdict.of_run(run, credits=run.credits, at=now)
    if made is not None and run is not None and run.retries:
        after_retries(output, track.name, run)
    if made is not None:
        return Judged(verdict.record(state, track.name, made))
    latest = verdict.read(state, track.name)
    if (track.run_state not in (None, "skipped")) or track.refused:
        return Judged(latest)  # refused, failed to start, in flight: judged by that
    health = verdict.health(latest, max_age=desired.run.max_age, now=now)
    if health.ok:
        return Judged(latest, health)
    why = track.run_reason if track.run_state == "skipped" else "--no-run"
    reason = f"{health.reason}; no run now: {why}"
    output.error(
        f"{track.name}: {reason}",
        event="collection_unhealthy",
        collection=track.name,
        stale=health.stale,
        run_id=latest.run_id if latest is not None else None,
    )
    return Judged(latest, verdict.Health(False, reason, health.stale))
