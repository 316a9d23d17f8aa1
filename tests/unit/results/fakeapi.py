"""An in-memory stand-in of the jobs listing and the result call, as SPEC §1 documents them.

Paging by opaque cursor, `status_filter`, `order_by`/`order_dir`, `since_completed_at`
strictly after, `include_results` capping pages at 100 and leaving `result` null for a
body over the inline cap, the single-result call with its 404 codes. Jobs become visible
(persisted) when the test says so, which is how ties and late jobs are staged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sprunner.results.apitypes import Job, JobPage, ResultUnavailableError
from sprunner.results.checkpoint import parse_time

INLINE_CAP = 2_000


def job(
    n: int,
    completed_at: str,
    *,
    status: str = "completed",
    size: int = 100,
    expired: bool = False,
) -> tuple[Job, dict[str, Any] | None, bool]:
    """Job number `n`, its body (`size` characters of html) and whether it has expired."""
    body = None
    if status == "completed":
        body = {
            "url": f"https://example.com/{n}",
            "custom_id": f"c{n}",
            "html": "x" * size,
            "markdown": f"# {n}",
            "statusCode": 200,
            "screenshot": "base64…",
            "extracted_data": {"n": n},
        }
    record = Job(
        job_id=f"job-{n:05d}",
        run_id="run-1",
        collection_id="col-1",
        status=status,
        status_code=200 if status == "completed" else 503,
        message="ok" if status == "completed" else "upstream said no",
        url=f"https://example.com/{n}",
        custom_id=f"c{n}",
        completed_at=completed_at,
        block_reason=None if status == "completed" else "captcha",
    )
    return record, body, expired


@dataclass
class FakeRun:
    total_requests: int
    success_requests: int = 0
    failed_requests: int = 0
    timeout_requests: int = 0
    all_jobs_persisted: bool = False


@dataclass
class FakeJobsApi:
    jobs: list[Job] = field(default_factory=list)
    bodies: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)
    lost: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, *entries: tuple[Job, dict[str, Any] | None, bool]) -> None:
        """Make jobs visible in the listing (persisted)."""
        for record, body, expired in entries:
            self.jobs.append(record)
            self.bodies[record.job_id] = body
            if expired:
                self.expired.add(record.job_id)

    def run(self, total: int, *, done: bool = False) -> FakeRun:
        """A run whose counts are the jobs visible so far."""
        counts = {
            s: sum(j.status == s for j in self.jobs) for s in ("completed", "failed", "timeout")
        }
        return FakeRun(
            total_requests=total,
            success_requests=counts["completed"],
            failed_requests=counts["failed"],
            timeout_requests=counts["timeout"],
            all_jobs_persisted=done,
        )

    def list_calls(self) -> list[dict[str, Any]]:
        return [kw for call, kw in self.calls if call == "list_jobs"]

    def result_calls(self) -> list[str]:
        return [kw["job_id"] for call, kw in self.calls if call == "get_job_result"]

    async def list_jobs(
        self,
        collection_id: str,
        run_id: str,
        *,
        name: str,
        cursor: str | None = None,
        limit: int | None = None,
        status_filter: Sequence[str] = (),
        order_by: str | None = None,
        order_dir: str | None = None,
        since_completed_at: str | None = None,
        include_results: bool = False,
    ) -> JobPage:
        self.calls.append(("list_jobs", {
            "cursor": cursor, "limit": limit, "status_filter": tuple(status_filter),
            "order_by": order_by, "order_dir": order_dir, "since": since_completed_at,
            "include_results": include_results,
        }))  # fmt: skip
        chosen = [j for j in self.jobs if not status_filter or j.status in status_filter]
        if since_completed_at is not None:
            since = parse_time(since_completed_at)
            chosen = [j for j in chosen if j.completed_at and parse_time(j.completed_at) > since]
        if order_by == "completed_at":
            chosen.sort(key=lambda j: (parse_time(j.completed_at or "1970-01-01"), j.job_id))
        else:
            chosen.sort(key=lambda j: j.job_id)
        if order_dir == "desc":
            chosen.reverse()
        size = min(limit or 1000, 100 if include_results else 1000)
        start = int(cursor or 0)
        items = chosen[start : start + size]
        more = start + size < len(chosen)
        return JobPage(
            items=tuple(self._with_result(j) if include_results else j for j in items),
            cursor_next=str(start + size) if more else None,
            has_more=more,
        )

    def _with_result(self, record: Job) -> Job:
        body = self.bodies.get(record.job_id)
        inline = body if body is not None and len(str(body)) <= INLINE_CAP else None
        if record.job_id in self.expired | self.lost | self.pending:
            inline = None
        return replace(record, result=inline, has_result=True)

    async def get_job_result(
        self, collection_id: str, run_id: str, job_id: str, *, name: str
    ) -> Mapping[str, Any]:
        self.calls.append(("get_job_result", {"job_id": job_id}))
        if job_id in self.expired:
            raise ResultUnavailableError("expired", code="result_expired")
        if job_id in self.pending:
            raise ResultUnavailableError("not stored yet", code="result_pending")
        if job_id in self.lost:
            raise ResultUnavailableError("lost", code="result_lost")
        body = self.bodies.get(job_id)
        if body is None:
            raise ResultUnavailableError("no such job", code="job_id_invalid")
        return body
