"""The words and tables a person reads: the plan table, the apply summary, the live progress
table and the plan's JSON document. Pure functions from frozen values to text; the output
object (`sprunner.ui`) decides where the text goes and redacts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sprunner.outcome import ApplyOutcome, Progress
    from sprunner.reconcile.plan import Plan, PlannedCollection

# The display's signs, derived from the one vocabulary of actions (`sprunner.outcome.Action`).
SIGNS = {"create": "+", "update": "~", "delete": "-", "error": "!", "unchanged": " ", "skip": "?"}
FAILED_JOBS_SHOWN = 10


def plan_lines(plan: Plan) -> Iterator[str]:
    for item in plan.items:
        yield f"  {SIGNS[item.action]} {item.name:<30} {item.action:<9} {_detail(item)}".rstrip()
    for item in plan.not_pruned:
        detail = "delete with --prune: " + item.reason
        yield f"  {SIGNS['delete']} {item.name:<30} {'delete':<9} {detail}".rstrip()
    for companion in plan.companions:
        detail = f"{companion.remote_id} (retries of {companion.parent}; managed by sprunner)"
        yield f"    {companion.name:<30} companion  {detail}"
    for ref in plan.unmanaged:
        yield f"    {ref.name:<30} unmanaged  {ref.id} (never touched)"
    yield (
        f"Plan: {len(plan.of('create'))} to create, {len(plan.of('update'))} to update, "
        f"{len(plan.of('delete'))} to delete, {len(plan.of('unchanged'))} unchanged, "
        f"{len(plan.of('error'))} in error. One run of each costs {plan.credits} credits."
    )
    if plan.not_pruned:
        yield f"{len(plan.not_pruned)} created by sprunner and no longer declared: --prune deletes."
    if not plan.has_changes:
        yield "No changes: the remote collections match the job files."


def _detail(item: PlannedCollection) -> str:
    if item.action in ("create", "update"):
        diff = "" if item.diff is None or item.action == "create" else f" ({item.diff})"
        detail = f"{item.requests} requests{diff}, {item.credits} credits a run"
        return f"{detail}; {item.reason}" if item.reason else detail
    return item.reason


def plan_json(plan: Plan) -> dict[str, Any]:
    """`plan --json`: one stable document (deletions without --prune listed as before)."""

    def entry(item: PlannedCollection) -> dict[str, Any]:
        d = item.diff
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
        }

    return {
        "changes_pending": plan.has_changes,
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
        },
    }


def summary_lines(outcome: ApplyOutcome, *, quiet: bool) -> Iterator[str]:
    """terraform-style closing lines; with `quiet` only the problems."""
    from sprunner.report import summary as counts

    for c in outcome.collections:
        if c.ok:
            continue
        yield f"FAILED {c.name}: {c.failure_reason}"
        run = c.run
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
    if s["runs"]:
        yield (
            f"Runs: {s['runs']}, {s['total_requests']} requests: {s['success_requests']} ok, "
            f"{s['failed_requests']} failed, {s['timeout_requests']} timed out; "
            f"{s['credits']} credits."
        )


def progress_table(rows: Sequence[Progress], redact: Callable[[str], str]) -> Any:
    """The live table (rich) of the runs, from the runner's frozen snapshots."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_footer=True)
    table.add_column("collection", footer="total")
    table.add_column("action")
    table.add_column("run")
    table.add_column("done", justify="right")
    table.add_column("failed", justify="right")
    done = total = bad = 0
    for row in rows:
        run = row.run
        row_done = row_bad = row_total = 0
        if run is not None:
            row_bad = run.failed_requests + run.timeout_requests
            row_done = run.success_requests + row_bad
            row_total = run.total_requests
        done, total, bad = done + row_done, total + row_total, bad + row_bad
        table.add_row(
            redact(row.name),
            row.action or "…",
            row.run_state or "",
            f"{row_done}/{row_total}" if run is not None else "",
            str(row_bad) if run is not None else "",
        )
    table.columns[3].footer = f"{done}/{total}"
    table.columns[4].footer = str(bad)
    return table
