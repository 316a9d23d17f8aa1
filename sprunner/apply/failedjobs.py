"""Failed jobs with their `custom_id`, `status_code` and `block_reason` (SPEC §9).

A run's answer lists its failed jobs as `{job_id, url, status, error}`; the jobs listing of
the run gives the rest. After the runs are waited for, each completed run that has failed
jobs and lacks these details gets them from the listing filtered on `failed,timeout` (1,000
jobs a page, at most `MAX_PAGES` pages a run: a run with more failures keeps the details of
the first ones, and the report still lists every failed job). Jobs already carrying the
details (an API that puts them in the run answer) cost no call, nor does a run whose
results were drained: its failed jobs came from the listing already.

A call that fails leaves the jobs as they were (logged with -v): details of a report are
never a reason to fail the apply; only an error that makes the API unusable propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sprunner.api.errors import ApiError, ApiUnusableError
from sprunner.report.outcome import CollectionOutcome

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.api.models import Job
    from sprunner.apply.track import Details
    from sprunner.output.ui import Output

MAX_PAGES = 5
PAGE = 1000


def _wants(c: CollectionOutcome) -> bool:
    run = c.run
    return (
        run is not None
        and run.run_id is not None
        and c.collection_id is not None
        # A drained run's failed jobs come from the listing already (`results/delivery.py`).
        and run.results is None
        and any(j.custom_id is None and j.status_code is None for j in run.failed_jobs)
    )


async def _details(client: ApiClient, c: CollectionOutcome, output: Output) -> dict[str, Job]:
    assert c.run is not None and c.run.run_id is not None and c.collection_id is not None
    found: dict[str, Job] = {}
    cursor: str | None = None
    try:
        for _ in range(MAX_PAGES):
            page = await client.list_jobs(
                c.collection_id,
                c.run.run_id,
                name=c.name,
                cursor=cursor,
                limit=PAGE,
                status_filter=("failed", "timeout"),
            )
            found.update((job.job_id, job) for job in page.items)
            if not page.has_more:
                break
            cursor = page.cursor_next
    except ApiUnusableError:
        raise
    except ApiError as error:
        output.debug(f"{c.name}: failed jobs' details not known: {error}")
    return found


async def job_details(
    client: ApiClient, collections: Sequence[CollectionOutcome], output: Output
) -> Details:
    """Per collection that wants them, its failed jobs' details by job id: the runner's
    tracks fold them in before they are shown (`Track.outcome`), so a job is matched to
    its request with its custom_id, and that is shown masked like its URL."""
    wanted = [c for c in collections if _wants(c)]
    found = await asyncio.gather(*(_details(client, c, output) for c in wanted))
    return {c.name: jobs for c, jobs in zip(wanted, found, strict=True) if jobs}
