"""The words and tables a person reads: the plan table, the apply summary and the plan's JSON
document (the live display is `sprunner.output.liveview`). Pure functions from frozen values to
text; the output object (`sprunner.output.ui`) decides where the text goes and redacts it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sprunner.reconcile.actions import SIGNS

if TYPE_CHECKING:
    from sprunner.reconcile.plan import Plan, PlannedCollection
    from sprunner.reconcile.runplan import RunIntent
    from sprunner.report.outcome import ApplyOutcome

FAILED_JOBS_SHOWN = 10


def plan_lines(
    plan: Plan, runs: Mapping[str, RunIntent] | None = None, *, verbosity: int = 0
) -> Iterator[str]:
    """The plan table; per collection a second line says whether a run would start now.
    `verbosity` -1 (`plan -q`): only the problems; 1: every unmanaged collection listed."""
    runs = runs or {}
    if verbosity < 0:
        for item in plan.of("error"):
            yield f"  {SIGNS['error']} {item.name:<30} error     {item.reason}"
        return
    for item in plan.items:
        yield f"  {SIGNS[item.action]} {item.name:<30} {item.action:<9} {_detail(item)}".rstrip()
        intent = runs.get(item.name)
        if intent is not None and item.action not in ("delete", "error", "skip"):
            yield f"{'':<44}{_run_words(intent)}"
    for item in plan.not_pruned:
        detail = "delete with --prune: " + item.reason
        yield f"  {SIGNS['delete']} {item.name:<30} {'delete':<9} {detail}".rstrip()
    for companion in plan.companions:
        detail = f"{companion.remote_id} (retries of {companion.parent}; managed by sprunner)"
        yield f"    {companion.name:<30} companion  {detail}"
    yield from _unmanaged(plan, verbosity)
    starting = [i for i in runs.values() if i.start]
    yield (
        f"Plan: {len(plan.of('create'))} to create, {len(plan.of('update'))} to update, "
        f"{len(plan.of('delete'))} to delete, {len(plan.of('unchanged'))} unchanged, "
        f"{len(plan.of('error'))} in error."
    )
    # The cost (at most; `sprunner.runs.credits`): only successful requests are charged.
    yield (
        f"Runs: {len(starting)} would start now, costing at most "
        f"{sum(i.credits for i in starting)} credits."
    )
    if plan.not_pruned:
        yield f"{len(plan.not_pruned)} created by sprunner and no longer declared: --prune deletes."
    if not plan.has_changes:
        yield "No changes: the remote collections match the job files."


def _run_words(intent: RunIntent) -> str:
    if intent.start:
        why = f": {intent.reason}" if intent.reason else ""
        return f"run: starts now{why} (at most {intent.credits} credits)"
    return f"run: none ({intent.reason})" if intent.reason else "run: none"


def _unmanaged(plan: Plan, verbosity: int) -> Iterator[str]:
    if not plan.unmanaged:
        return
    if verbosity >= 1:
        for ref in plan.unmanaged:
            yield f"    {ref.name:<30} unmanaged  {ref.id} (never touched)"
        return
    count = len(plan.unmanaged)
    yield (
        f"{count} unmanaged collection{'s' if count != 1 else ''} in the account "
        "(never touched; -v lists them)."
    )


def _detail(item: PlannedCollection) -> str:
    if item.action in ("create", "update"):
        diff = "" if item.diff is None or item.action == "create" else f" ({item.diff})"
        detail = f"{item.requests} requests{diff}, at most {item.credits} credits a run"
        return f"{detail}; {item.reason}" if item.reason else detail
    return item.reason


def plan_json(plan: Plan, runs: Mapping[str, RunIntent] | None = None) -> dict[str, Any]:
    """`plan --json`: one stable document (deletions without --prune listed as before).
    Each collection's `run` says whether apply would start a run now; `run_credits` sums
    the runs that would start."""
    runs = runs or {}

    def entry(item: PlannedCollection) -> dict[str, Any]:
        d = item.diff
        intent = runs.get(item.name)
        return {
            "name": item.name,
            "action": item.action,
            "reason": item.reason,
            "file": item.desired.file if item.desired else None,
            "remote_id": item.remote_id,
            "requests": item.requests,
            "credits": item.credits,
            "diff": None
            if d is None
            else {"added": d.added, "removed": d.removed, "changed": d.changed},
            "run": {
                "start": intent.start if intent else False,
                "reason": intent.reason if intent else None,
                "credits": intent.credits if intent else 0,
            },
        }

    run_credits = sum(i.credits for i in runs.values() if i.start)
    return {
        "changes_pending": plan.has_changes,
        "run_credits": run_credits,
        "collections": [entry(item) for item in plan.in_file_order()],
        "unmanaged": [{"name": ref.name, "id": ref.id} for ref in plan.unmanaged],
        "companions": [
            {"name": c.name, "parent": c.parent, "id": c.remote_id} for c in plan.companions
        ],
        "summary": {
            "create": len(plan.of("create")),
            "update": len(plan.of("update")),
            "unchanged": len(plan.of("unchanged")),
            "delete": len(plan.of("delete")) + len(plan.not_pruned),
            "error": len(plan.of("error")),
            "skip": len(plan.of("skip")),
            "credits": plan.credits,
            "runs": sum(1 for i in runs.values() if i.start),
            "run_credits": run_credits,
        },
    }


def summary_lines(outcome: ApplyOutcome, *, quiet: bool) -> Iterator[str]:
    """terraform-style closing lines; with `quiet` only the problems."""
    from sprunner.report.document import summary as counts

    for c in outcome.collections:
        if c.ok:
            continue
        run = c.run
        if run is not None and run.status == "in_progress" and c.error is None:
            # Interrupted while it ran: not a failure, and the next apply adopts it.
            what = f"run {run.run_id}" if run.run_id else "its run start"
            yield f"IN PROGRESS {c.name}: {what} is still in progress; the next apply adopts it"
            continue
        yield f"FAILED {c.name}: {c.failure_reason}"
        if run is not None:
            # After retries, what still fails (SPEC section 8).
            jobs = run.final.failed_jobs if run.final is not None else run.failed_jobs
            for job in jobs[:FAILED_JOBS_SHOWN]:
                yield f"  {job.status}: {job.url}: {job.error}"
            if len(jobs) > FAILED_JOBS_SHOWN:
                more = len(jobs) - FAILED_JOBS_SHOWN
                yield f"  … and {more} more (see --report)"
    if quiet:
        return
    s = counts(outcome)
    head = "Apply interrupted" if outcome.interrupted else "Apply complete"
    yield (
        f"{head}: {s['created']} created, {s['updated']} updated, {s['unchanged']} unchanged, "
        f"{s['deleted']} deleted, {s['errors']} errors."
    )
    elsewhere = outcome.count("skip")
    if elsewhere:  # a shared state: other applies took these (`sprunner.runs.locks`)
        yield f"Handled by other applies: {elsewhere}."
    if s["runs"]:
        yield _runs_line(s)


def _runs_line(s: Mapping[str, int]) -> str:
    """The runs of an apply after their retries, and the credits they were charged."""
    return (
        f"Runs: {s['runs']}, {s['total_requests']} requests: {s['success_requests']} ok, "
        f"{s['failed_requests']} failed, {s['timeout_requests']} timed out; "
        f"{s['credits']} credits charged."
    )


def ping_lines(outcome: ApplyOutcome, *, shown: int = 5) -> Iterator[str]:
    """A few lines for a monitor (the final ping's body): the counts and the collections
    that are not healthy, with why; no URL, no job (the caller masks it all the same)."""
    from sprunner.report.document import summary as counts

    s = counts(outcome)
    yield (
        f"{s['collections']} collections: {s['created']} created, {s['updated']} updated, "
        f"{s['unchanged']} unchanged, {s['deleted']} deleted, {s['errors']} errors; "
        f"{s['failed']} not healthy"
    )
    if s["runs"]:
        yield _runs_line(s)
    failing = [c for c in outcome.collections if not c.ok]
    for c in failing[:shown]:
        yield f"FAILED {c.name}: {c.failure_reason}"
    if len(failing) > shown:
        yield f"... and {len(failing) - shown} more (see the report)"
    if outcome.error is not None:
        first, *more = outcome.error.splitlines() or [""]
        yield f"error: {first[:300]}" + (f" (and {len(more)} more lines)" if more else "")
