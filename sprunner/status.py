"""`sprunner status`: what each declared collection has been doing, read from the API.

Read-only by construction: `gather` calls only `list_collections` (once) and `list_runs`
(once per collection found remotely, concurrently under the client's bound), and reads
the state entries it is given; it never writes, never takes the lock, so it can run while
an apply is going on.

The answer is frozen data (`CollectionStatus`); the renderers (`render_text`, `to_json`,
`sparkline`) are pure functions of it and of `now`, so every output is testable without a
network or a terminal.

Decisions:
- the remote id comes from the API's list (the truth), not from the state (a cache);
- "last run time" for the schedule is the state's newest started run, else the newest
  `created_at` from the API: the same rule `apply` uses, so `status` and `apply` agree on
  when a collection is due;
- a pending change compares the desired fingerprint with the state's last applied one;
  without a state entry for the same remote id it is unknown (`None`), which `apply`
  treats as changed;
- credits of a run are its successful requests times the cost per request (failed jobs
  are refunded). For a collection that mixes plain and browser requests the cost per
  request is the average, so the figure is an estimate there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sprunner.jobfile.model import DesiredCollection, RunPolicy
from sprunner.runs.decision import next_due

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.api.models import CollectionRef, Run
    from sprunner.state import Entry

# The state's fingerprint of a desired collection (keyed: see `sprunner.state.hashing`).
Fingerprint = Callable[[DesiredCollection], str]

DEFAULT_RUNS = 10


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

    @property
    def last_run(self) -> RunSummary | None:
        return self.runs[0] if self.runs else None


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cost_per_request(desired: DesiredCollection) -> float:
    return desired.credits / len(desired.requests) if desired.requests else 0.0


def summarize(run: Run, per_request: float) -> RunSummary:
    return RunSummary(
        run_id=run.run_id,
        status=run.status,
        created_at=run.created_at,
        total=run.total_requests,
        success=run.success_requests,
        failed=run.failed_requests,
        timeout=run.timeout_requests,
        credits=round(run.success_requests * per_request),
    )


def due(policy: RunPolicy, *, last_run_at: float | None, pending: bool | None, now: float) -> Due:
    """When the next apply would start a run, by the run policy (ignoring overlap/budget)."""
    if policy.when == "never":
        return Due(None, "never (run.when: never)")
    if policy.when == "changed" and pending is False:
        return Due(None, "when the content changes")
    if policy.schedule is None:
        return Due(now, "at the next apply")
    if last_run_at is None:
        return Due(now, "at the next apply (no run yet)")
    at = next_due(policy.schedule, last_run_at)
    if at <= now:
        return Due(now, f"at the next apply (due since {iso(at)})")
    return Due(at, f"{iso(at)} ({policy.schedule})")


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


async def gather(
    collections: Sequence[DesiredCollection],
    entries: Mapping[str, Entry],
    client: ApiClient,
    *,
    runs: int = DEFAULT_RUNS,
    now: float,
    fingerprint: Fingerprint | None = None,
) -> tuple[CollectionStatus, ...]:
    """Every declared collection's status, in the given order.

    The list call failing raises (nothing can be said); a `list_runs` failing for one
    collection is that collection's `error`, and the others go on.
    """
    from sprunner.session import list_remote

    by_name: dict[str, list[CollectionRef]] = {}
    for ref in await list_remote(client):
        by_name.setdefault(ref.name, []).append(ref)
    return tuple(
        await asyncio.gather(
            *(
                _one(
                    c, by_name.get(c.name, []), entries.get(c.name), client, runs, now, fingerprint
                )
                for c in collections
            )
        )
    )


async def _one(
    desired: DesiredCollection,
    refs: list[CollectionRef],
    entry: Entry | None,
    client: ApiClient,
    keep: int,
    now: float,
    fingerprint: Fingerprint | None,
) -> CollectionStatus:
    from sprunner.api.errors import ApiError

    base = CollectionStatus(desired.name, desired.file, None)
    if len(refs) > 1:
        ids = ", ".join(r.id for r in refs)
        return replace(base, error=f"present {len(refs)} times remotely (ids {ids})")
    remote_id = refs[0].id if refs else None
    pending = pending_change(desired, entry, remote_id, fingerprint)
    last_started = entry.last_run.started_at if entry and entry.last_run else None
    if remote_id is None:
        when = due(desired.run, last_run_at=None, pending=pending, now=now)
        return replace(base, due=when, pending_change=pending)
    try:
        answer = await client.list_runs(remote_id, name=desired.name)
    except ApiError as error:
        return replace(base, remote_id=remote_id, pending_change=pending, error=str(error))
    per_request = cost_per_request(desired)
    summaries = tuple(summarize(r, per_request) for r in answer)
    in_flight = next((r for r in summaries if r.status == "in_progress"), None)
    newest = next((r.created_at for r in summaries if r.created_at is not None), None)
    when = due(
        desired.run,
        last_run_at=last_started if last_started is not None else newest,
        pending=pending,
        now=now,
    )
    if in_flight is not None and desired.run.overlap == "skip" and when.at is not None:
        # apply adopts and waits for the run in flight instead of starting another.
        when = Due(when.at, f"{when.note}; waits for the run in flight (overlap: skip)")
    return CollectionStatus(
        desired.name, desired.file, remote_id, summaries[:keep], in_flight, when, pending
    )


# --- rendering: pure functions of the gathered data ------------------------------------------

SPARKS = "▁▂▃▄▅▆▇█"
NO_DATA = "·"


def sparkline(ratios: Sequence[float | None]) -> str:
    """One block per ratio (0.0 lowest, 1.0 highest, oldest first); `·` where there is none."""
    out = []
    for ratio in ratios:
        if ratio is None:
            out.append(NO_DATA)
        else:
            clamped = min(1.0, max(0.0, ratio))
            out.append(SPARKS[round(clamped * (len(SPARKS) - 1))])
    return "".join(out)


def trend(status: CollectionStatus) -> str:
    """The sparkline of a collection's last completed runs, oldest on the left."""
    return sparkline([r.success_ratio for r in reversed(status.runs) if r.status == "completed"])


def _run_cell(run: RunSummary | None) -> str:
    if run is None:
        return "no run yet"
    when = iso(run.created_at) or "time unknown"
    if run.status == "in_progress":
        return f"{when} in progress {run.success + run.failed + run.timeout}/{run.total}"
    return f"{when} {run.success}/{run.total} ok"


def _change_cell(status: CollectionStatus) -> str:
    if status.remote_id is None:
        return "create"
    return {True: "yes", False: "no", None: "unknown"}[status.pending_change]


def _rows(statuses: Sequence[CollectionStatus], *, with_trend: bool) -> list[list[str]]:
    header = ["COLLECTION", "ID", "LAST RUN", "CREDITS", "IN FLIGHT", "NEXT RUN", "CHANGE"]
    rows = [header + (["TREND"] if with_trend else [])]
    for s in statuses:
        last = s.last_run
        row = [
            s.name,
            s.remote_id or "-",
            f"error: {s.error}" if s.error else _run_cell(last),
            str(last.credits) if last else "-",
            s.in_flight.run_id if s.in_flight else "-",
            s.due.note or "-",
            _change_cell(s),
        ]
        rows.append(row + ([trend(s)] if with_trend else []))
    return rows


def render_text(
    statuses: Sequence[CollectionStatus], *, with_trend: bool = False, detail: bool = True
) -> str:
    """A plain table, then (with `detail`) each collection's last runs, one line each."""
    rows = _rows(statuses, with_trend=with_trend)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if detail:
        for s in statuses:
            if not s.runs:
                continue
            lines.extend(["", f"{s.name}: last {_plural(len(s.runs), 'run')}"])
            for r in s.runs:
                lines.append(
                    f"  {iso(r.created_at) or '-':20} {r.status:11} {r.success:>6} ok "
                    f"{r.failed:>5} failed {r.timeout:>5} timeout {r.credits:>7} credits  "
                    f"{r.run_id}"
                )
    return "\n".join(lines)


def _run_json(run: RunSummary) -> dict[str, object]:
    return {
        "run_id": run.run_id,
        "status": run.status,
        "created_at": iso(run.created_at),
        "total_requests": run.total,
        "success_requests": run.success,
        "failed_requests": run.failed,
        "timeout_requests": run.timeout,
        "credits": run.credits,
        "success_ratio": run.success_ratio,
    }


def to_json(statuses: Sequence[CollectionStatus], *, now: float) -> dict[str, object]:
    """The `--json` document: stable keys, times as ISO-8601 UTC strings."""
    return {
        "version": 1,
        "generated_at": iso(now),
        "collections": [
            {
                "name": s.name,
                "file": s.file,
                "remote_id": s.remote_id,
                "error": s.error,
                "pending_change": s.pending_change,
                "next_run": {"at": iso(s.due.at), "reason": s.due.note},
                "in_flight": _run_json(s.in_flight) if s.in_flight else None,
                "runs": [_run_json(r) for r in s.runs],
            }
            for s in statuses
        ],
    }


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{count} {word}s"
