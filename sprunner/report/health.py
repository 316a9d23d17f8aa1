"""`sprunner status`: what each declared collection has been doing, as frozen data.

`commands/status.py` gathers it (the API's lists and what the state recorded); the rules
that turn those into a status are here, with no API call, so that `plan`, `status` and
the report say the same. Read-only by construction: nothing here writes.

The answer is frozen data (`CollectionStatus`); `sprunner.output.statusview` renders it.

Decisions:
- the remote id comes from the API's list (the truth), not from the state (a cache);
- when the next run starts is `apply`'s own rule (`runs.decision.decide`), in its words:
  the last run time is the state's newest started run, else the newest `created_at` from
  the API, and `when: changed` compares with the content of the last *started* run, so a
  change left pending by `--no-run` says "at the next apply" here as in `plan`;
- a pending change compares the desired fingerprint with the state's last applied one;
  without a state entry for the same remote id it is unknown (`None`), which `apply`
  treats as changed;
- health is the collection's latest verdict (`sprunner.runs.verdict`, recorded by the apply
  that saw the run to its end, after its retries) and `run.max_age`; that run's counts and
  credits are shown after its retries, as the report and the metrics show them;
- credits are the ones charged (`sprunner.runs.credits`): successful requests times the cost
  per request (failed jobs are refunded).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sprunner.jobfile.model import DesiredCollection, RunPolicy
from sprunner.runs.credits import charged
from sprunner.runs.decision import decide, next_due
from sprunner.runs.verdict import Health, Verdict

if TYPE_CHECKING:
    from sprunner.api.models import Run
    from sprunner.state import Entry

# The state's fingerprint of a desired collection (keyed: see `sprunner.state.hashing`).
Fingerprint = Callable[[DesiredCollection], str]

DEFAULT_RUNS = 10
HEALTHY = Health(True)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str  # in_progress | completed
    created_at: float | None  # epoch seconds (UTC); None on old runs
    total: int
    success: int
    failed: int
    timeout: int
    credits: int
    retries: int = 0  # the counts are after this many retry runs (the verdict's)

    @property
    def success_ratio(self) -> float | None:
        """Successful share of a completed run's requests; None while it runs or if empty."""
        if self.status != "completed" or self.total == 0:
            return None
        return self.success / self.total


@dataclass(frozen=True)
class Due:
    """When `apply` would next start a run: `at` (epoch s) or None, and why in words."""

    at: float | None
    note: str


@dataclass(frozen=True)
class CollectionStatus:
    name: str
    file: str
    remote_id: str | None  # None: not created yet (or deleted remotely)
    runs: tuple[RunSummary, ...] = ()  # newest first, at most N
    in_flight: RunSummary | None = None
    due: Due = Due(None, "")
    pending_change: bool | None = None  # None: unknown (no state for this remote id)
    error: str | None = None  # the API could not tell us about this collection
    verdict: Verdict | None = None  # the latest recorded (`sprunner.runs.verdict`)
    health: Health = HEALTHY

    @property
    def last_run(self) -> RunSummary | None:
        return self.runs[0] if self.runs else None


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def summarize(run: Run, per_request: float, verdict: Verdict | None = None) -> RunSummary:
    """A run as `status` shows it: the run the verdict judged with its counts and credits
    after its retries (as the report and the metrics), any other with its own."""
    if verdict is not None and verdict.run_id == run.run_id:
        return RunSummary(
            run.run_id,
            run.status,
            run.created_at,
            verdict.total_requests,
            verdict.success_requests,
            verdict.failed_requests,
            verdict.timeout_requests,
            verdict.credits,
            verdict.retries,
        )
    return RunSummary(
        run_id=run.run_id,
        status=run.status,
        created_at=run.created_at,
        total=run.total_requests,
        success=run.success_requests,
        failed=run.failed_requests,
        timeout=run.timeout_requests,
        credits=charged(run.success_requests, per_request),
    )


def due(policy: RunPolicy, *, last_run_at: float | None, changed: bool, now: float) -> Due:
    """When the next apply would start a run, by the run policy (ignoring overlap/budget),
    in the words `plan` and the report use (`decide`'s). `changed`: the content differs
    from the last started run's (`lifecycle.change_pending`)."""
    verdict = decide(policy, changed=changed, last_run_at=last_run_at, now=now)
    if verdict.decision == "skip":
        return Due(verdict.next_at, verdict.reason)
    if policy.schedule is None:
        return Due(now, "at the next apply")
    if last_run_at is None:
        return Due(now, "at the next apply (no run yet)")
    return Due(now, f"at the next apply (due since {iso(next_due(policy.schedule, last_run_at))})")


@dataclass(frozen=True)
class Recorded:
    """What the state says of one declared collection."""

    entry: Entry | None = None
    verdict: Verdict | None = None
    changed: bool = True  # since the last started run (unknown counts as changed)


def pending_change(
    desired: DesiredCollection,
    entry: Entry | None,
    remote_id: str | None,
    fingerprint: Fingerprint | None = None,
) -> bool | None:
    """Whether the next apply would change the collection; `fingerprint` is the state's
    (keyed) fingerprint function, as what the state records was made with it."""
    if remote_id is None:
        return True  # the next apply creates it
    if entry is None or entry.id != remote_id or entry.fingerprint is None:
        return None
    current = desired.fingerprint if fingerprint is None else fingerprint(desired)
    return entry.fingerprint != current
