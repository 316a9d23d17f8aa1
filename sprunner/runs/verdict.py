"""Each collection's latest verdict: the lifecycle's "judged" step (SPEC §9, §10).

Health never forgets: every signal (exit code, the report's `ok`, the ping, the metrics,
`status`) judges a selected collection by its latest finished run *after its retries*,
not only by what the current apply ran. An apply that finishes a run (started or
adopted, retried or not) records that run's verdict here, and an apply that skips the
collection (not due, unchanged, `never`, `--no-run`) reads it back.

The record is a per-collection JSON value of the state (`put_blob(name, "verdict", ...)`),
so it lives in whichever store the state uses, and it is a cache like the rest of the
state: lost, the collection is judged by its next run (and is stale meanwhile when it has
a `run.max_age`). It holds no secret: a run id, times, counts and a reason in words.

`record` keeps `last_success_at` across failures: the finish time of the newest passing
run, which `run.max_age` (staleness) and the metric
`sprunner_collection_last_success_timestamp_seconds` read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sprunner.runs.counts import counts_of

if TYPE_CHECKING:
    from sprunner.report.outcome import RunOutcome

KIND = "verdict"

VerdictStatus = Literal["completed", "timed_out"]


class BlobStore(Protocol):
    """What the verdict needs of the state (`StateStore` has it)."""

    def get_blob(self, name: str, kind: str) -> Any: ...

    def put_blob(self, name: str, kind: str, value: Any, *, durable: bool = True) -> None: ...


@dataclass(frozen=True)
class Verdict:
    """How a collection's latest finished run went, after its retries."""

    run_id: str
    finished_at: float  # epoch seconds: seen completed (after the retries), or given up on
    ok: bool  # completed within max_failed (after the retries)
    reason: str | None = None  # why not ok, in words
    status: VerdictStatus = "completed"  # timed_out: we stopped waiting; it went on remotely
    total_requests: int = 0  # per request, after the retries
    success_requests: int = 0
    failed_requests: int = 0
    timeout_requests: int = 0
    credits: int = 0  # charged: successful requests x cost, retries included (credits.py)
    retries: int = 0  # retry runs of `<name>.retry` that followed
    started_at: float | None = None
    last_success_at: float | None = None  # finished_at of the newest passing run
    last_success_run: str | None = None


@dataclass(frozen=True)
class Health:
    """A collection's health by its latest verdict and `run.max_age`, at one moment."""

    ok: bool
    reason: str | None = None  # why not healthy, in words
    stale: bool = False


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(verdict: Verdict) -> dict[str, Any]:
    """The stored form (epoch seconds)."""
    return asdict(verdict)


def document(verdict: Verdict) -> dict[str, Any]:
    """The form the report and `status --json` show (ISO-8601 UTC times)."""
    return {
        "run_id": verdict.run_id,
        "status": verdict.status,
        "ok": verdict.ok,
        "reason": verdict.reason,
        "started_at": None if verdict.started_at is None else iso(verdict.started_at),
        "finished_at": iso(verdict.finished_at),
        "total_requests": verdict.total_requests,
        "success_requests": verdict.success_requests,
        "failed_requests": verdict.failed_requests,
        "timeout_requests": verdict.timeout_requests,
        "credits": verdict.credits,
        "retries": verdict.retries,
        "last_success_at": None
        if verdict.last_success_at is None
        else iso(verdict.last_success_at),
    }


def from_json(value: Any) -> Verdict | None:
    """The verdict a blob holds; None for none, or for one that does not parse (a damaged
    or foreign value is forgotten, never a crash: the next run judges again)."""
    if not isinstance(value, dict):
        return None
    try:
        verdict = Verdict(**value)
    except TypeError:
        return None
    numbers = (verdict.finished_at, verdict.total_requests, verdict.credits)
    if not isinstance(verdict.run_id, str) or not all(
        isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers
    ):
        return None
    return verdict


def read(state: BlobStore, name: str) -> Verdict | None:
    return from_json(state.get_blob(name, KIND))


def forget(state: BlobStore, name: str) -> None:
    """A collection deleted (`--prune`): a later one of the same name starts unjudged."""
    state.put_blob(name, KIND, None)


def record(state: BlobStore, name: str, verdict: Verdict) -> Verdict:
    """Make `verdict` the collection's latest (durable on return) and return it as kept:
    with the newest passing run carried over from the previous verdict when it failed."""
    if verdict.ok:
        verdict = replace(
            verdict, last_success_at=verdict.finished_at, last_success_run=verdict.run_id
        )
    else:
        previous = read(state, name)
        if previous is not None and previous.last_success_at is not None:
            verdict = replace(
                verdict,
                last_success_at=previous.last_success_at,
                last_success_run=previous.last_success_run,
            )
    state.put_blob(name, KIND, to_json(verdict))
    return verdict


def of_run(run: RunOutcome, *, credits: int, at: float) -> Verdict | None:
    """The verdict of a run seen to its end (completed after its retries, or timed out);
    None for a run that was not (skipped, refused, in progress, failed to start)."""
    if run.run_id is None or run.status not in ("completed", "timed_out"):
        return None
    counts = run.final or run
    reason = run.reason
    if not run.ok and reason is None:
        reason = f"{run.bad_jobs} of {counts.total_requests} jobs failed or timed out"
    return Verdict(
        run_id=run.run_id,
        finished_at=run.finished_at if run.finished_at is not None else at,
        ok=run.ok,
        reason=None if run.ok else reason,
        status="timed_out" if run.status == "timed_out" else "completed",
        **counts_of(counts),
        credits=credits,
        retries=len(run.retries),
        started_at=run.started_at,
    )


def health(verdict: Verdict | None, *, max_age: float | None, now: float) -> Health:
    """Healthy, or why not: the latest run failed, or it is stale (`run.max_age`). A
    collection with no verdict yet is healthy unless it has a `max_age`."""
    failed = None
    if verdict is not None and not verdict.ok:
        failed = f"last run {verdict.run_id} at {iso(verdict.finished_at)} failed: " + (
            verdict.reason or "failed"
        )
    stale = None
    if max_age is not None:
        last = verdict.last_success_at if verdict is not None else None
        if last is None:
            stale = f"stale: no passing run known (run.max_age {duration(max_age)})"
        elif now - last > max_age:
            run = verdict.last_success_run if verdict is not None else None
            stale = (
                f"stale: the last passing run{f' {run}' if run else ''} finished at "
                f"{iso(last)}, longer ago than run.max_age {duration(max_age)}"
            )
    reasons = [r for r in (failed, stale) if r is not None]
    return Health(not reasons, "; ".join(reasons) or None, stale is not None)


def duration(seconds: float) -> str:
    """`93600` -> `26h`, `5400` -> `1h30m`: a duration as a job file writes it."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    secs_part = f"{secs + seconds - whole:g}s" if secs or seconds != whole else ""
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + secs_part
    return text or "0s"
