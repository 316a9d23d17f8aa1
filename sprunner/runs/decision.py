"""Whether a collection runs in this apply: `when`, `schedule` and `--max-credits`.

Pure functions of plain values; the overlap rule needs the remote side and lives in
`runs/start.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from sprunner.jobfile.model import RunPolicy

Decision = Literal["run", "skip"]


@dataclass(frozen=True)
class RunDecision:
    decision: Decision
    reason: str = ""
    refused: bool = False  # skipped by the credit brake, not by the job file's policy
    next_at: float | None = None  # skipped by the schedule: when it is due (epoch s)


def next_due(schedule: str, last_run_at: float) -> float:
    """The first scheduled time (UTC) after the last run, as epoch seconds."""
    from croniter import croniter

    start = datetime.fromtimestamp(last_run_at, tz=timezone.utc)
    due: datetime = croniter(schedule, start).get_next(datetime)
    return due.timestamp()


def decide(
    policy: RunPolicy,
    *,
    changed: bool,
    last_run_at: float | None,
    now: float,
) -> RunDecision:
    """Apply `when` and `schedule`. `last_run_at` is when the newest known run started."""
    if policy.when == "never":
        return RunDecision("skip", "run.when is never")
    if policy.when == "changed" and not changed:
        return RunDecision("skip", "run.when is changed and nothing changed")
    if policy.schedule is not None and last_run_at is not None:
        due = next_due(policy.schedule, last_run_at)
        if due > now:
            when = datetime.fromtimestamp(due, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            reason = f"not due: schedule {policy.schedule!r} next at {when}"
            return RunDecision("skip", reason, next_at=due)
    return RunDecision("run")


def apply_budget(
    costs: Sequence[tuple[str, int]], max_credits: int | None
) -> dict[str, RunDecision]:
    """Refuse, in file order, the runs that would take the summed cost past `max_credits`.

    A later cheaper run may still fit after a refused one: the brake is on the total.
    """
    decisions: dict[str, RunDecision] = {}
    spent = 0
    for name, cost in costs:
        if max_credits is not None and spent + cost > max_credits:
            left = max_credits - spent
            decisions[name] = RunDecision(
                "skip",
                f"refused: a run costs {cost} credits and only {left} of --max-credits "
                f"{max_credits} are left",
                refused=True,
            )
        else:
            spent += cost
            decisions[name] = RunDecision("run")
    return decisions
