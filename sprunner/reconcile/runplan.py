"""Whether `apply` would start a run now, per planned collection: what `plan` shows.

`plan` and `apply` must agree, so both go through the same rules: `when` and `schedule`
are `sprunner.runs.decision.decide` (the runner's function), `changed` is the state's
`lifecycle.change_pending` (the runner calls it too: a change stays pending until a run
started with that content is recorded), and the order of the checks is the runner's
(`Runner._decide`):

1. a run that an interrupted apply left in flight (the state's `inflight`) is adopted and
   waited for, whatever the policy: no new run;
2. `when` / `schedule` (`decide`), with the last run time from the state, else the API;
3. with `overlap: skip`, a run in progress remotely is waited for instead of starting one.

`intend` is pure; `RemoteRuns` is what the command looked up (at most one list-runs call
per collection that may run and already exists remotely, see `sprunner.commands.plan`).
The credit brake (`--max-credits`) is apply's alone: `plan` shows the full cost of the runs
it would start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sprunner.runs.decision import decide

if TYPE_CHECKING:
    from sprunner.reconcile.plan import PlannedCollection
    from sprunner.state import Entry


@dataclass(frozen=True)
class RunIntent:
    start: bool
    reason: str | None  # why no run starts; when one does, why (`when: changed`) or None
    credits: int  # what the run would cost; 0 when none starts


@dataclass(frozen=True)
class RemoteRuns:
    """What the API said about a collection's runs (one list call)."""

    last_run_at: float | None  # newest `created_at`
    in_progress: str | None  # the id of a run in progress, if any


NO_RUN = RunIntent(False, None, 0)
CHANGED = "changed since the last started run"


def needs_remote(item: PlannedCollection, entry: Entry | None, changed: bool, now: float) -> bool:
    """Whether `intend` needs the API's runs: an existing collection that may run and
    whose last run time is unknown to the state, or whose overlap rule needs the runs."""
    desired = item.desired
    if desired is None or item.action not in ("unchanged", "update") or item.remote_id is None:
        return False
    if entry is not None and entry.inflight is not None and entry.id == item.remote_id:
        return False
    policy = desired.run
    last = entry.last_run.started_at if entry and entry.last_run else None
    if decide(policy, changed=changed, last_run_at=last, now=now).decision == "skip":
        return False
    return policy.overlap == "skip" or (policy.schedule is not None and last is None)


def intend(
    item: PlannedCollection,
    entry: Entry | None,
    *,
    changed: bool,
    remote: RemoteRuns | None,
    now: float,
) -> RunIntent:
    """Would `apply` start a run of `item` now, and if not, why."""
    desired = item.desired
    if desired is None or item.action in ("delete", "error", "skip"):
        return NO_RUN
    existing = item.action in ("unchanged", "update")
    inflight = entry is not None and entry.inflight is not None and entry.id == item.remote_id
    if existing and inflight:
        return RunIntent(False, "waits for the run an interrupted apply left in flight", 0)
    last = entry.last_run.started_at if existing and entry and entry.last_run else None
    if last is None and existing and remote is not None:
        last = remote.last_run_at
    verdict = decide(desired.run, changed=changed, last_run_at=last, now=now)
    if verdict.decision == "skip":
        return RunIntent(False, verdict.reason, 0)
    if existing and desired.run.overlap == "skip" and remote and remote.in_progress:
        reason = f"run {remote.in_progress} in progress remotely (overlap: skip): waits for it"
        return RunIntent(False, reason, 0)
    why = CHANGED if desired.run.when == "changed" else None  # what a change waits for
    return RunIntent(True, why, desired.credits)
