"""The failed and timed-out jobs of a completed run, and the final per-request counts.

The run answer's `failed_jobs` carries no `custom_id`; the jobs listing does, and retries
match requests by `(url, custom_id)`, so the listing is read (`status_filter=failed,timeout`,
paged). A run's listing is complete only once `all_jobs_persisted`: when it holds fewer
failed jobs than the run's counts, it is read again a few times before it is taken as is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence

from sprunner.api.client import ApiClient
from sprunner.api.models import Job, JobPage, Run
from sprunner.api.paging import job_pages
from sprunner.report.outcome import FinalCounts, FinalJob
from sprunner.retry.companion import Matched, job_key

BAD = ("failed", "timeout")
RELISTS = 5  # reads of a listing that is still short of the run's counts
RELIST_DELAY = 0.2  # seconds, doubled each time


async def jobs(client: ApiClient, run: Run, *, name: str) -> list[Job]:
    """Every failed or timed-out job of `run` (completed), in listing order."""
    expected = run.failed_requests + run.timeout_requests
    delay = RELIST_DELAY
    found = await _list(client, run, name=name)
    for _ in range(RELISTS):
        if len(found) >= expected:
            break
        await asyncio.sleep(delay)
        delay *= 2
        found = await _list(client, run, name=name)
    return found


async def _list(client: ApiClient, run: Run, *, name: str) -> list[Job]:
    found: list[Job] = []
    seen: set[str] = set()

    def fetch(cursor: str | None) -> Awaitable[JobPage]:
        return client.list_jobs(
            run.collection_id, run.run_id, name=name, cursor=cursor, status_filter=BAD
        )

    async for page in job_pages(fetch, collection=name):  # bounded: api/paging.py
        for job in page.items:
            if job.job_id not in seen and job.status in BAD:
                seen.add(job.job_id)
                found.append(job)
    return found


def final(
    total: int,
    settled: Sequence[Job],
    pending: Matched,
    attempts: Mapping[tuple[str, str | None], int],
    *,
    unmatched: int = 0,
) -> FinalCounts:
    """Per request, after the retries: still failing = settled + what the last run left."""
    still = [*settled, *pending.jobs]
    failed_jobs = tuple(
        FinalJob(
            job_id=job.job_id,
            url=job.url,
            custom_id=job.custom_id,
            status=job.status,
            error=job.message or job.status,
            status_code=job.status_code,
            block_reason=job.block_reason,
            attempts=attempts.get(job_key(job), 1),
        )
        for job in still
    )
    failed = sum(1 for job in still if job.status == "failed")
    timed_out = sum(1 for job in still if job.status == "timeout")
    return FinalCounts(
        total_requests=total,
        success_requests=max(total - failed - timed_out, 0),
        failed_requests=failed,
        timeout_requests=timed_out,
        failed_jobs=failed_jobs,
        unmatched=unmatched,
    )
