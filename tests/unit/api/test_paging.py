"""Paging a jobs listing always ends (issue #23: `has_more` forever looped past the timeout)."""

from __future__ import annotations

import pytest

from sprunner.api.errors import BadAnswerError
from sprunner.api.models import Job, JobPage
from sprunner.api.paging import MAX_IDLE_PAGES, job_pages

from .helpers import run


def _job(i: int) -> Job:
    return Job(job_id=f"j{i}", run_id="r", collection_id="c", status="completed", url="u")


async def _all(fetch: object, **kw: object) -> list[JobPage]:
    return [page async for page in job_pages(fetch, **kw)]  # type: ignore[arg-type]


def test_a_listing_that_ends_is_read_whole() -> None:
    async def fetch(cursor: str | None) -> JobPage:
        n = int(cursor or 0)
        more = n < 3
        return JobPage((_job(n),), str(n + 1) if more else None, more)

    pages = run(_all(fetch))
    assert [p.items[0].job_id for p in pages] == ["j0", "j1", "j2", "j3"]


@pytest.mark.parametrize(
    ("shape", "why"),
    [("empty", "brought no new job"), ("same", "brought no new job"), ("circle", "circle")],
)
def test_has_more_forever_is_an_error_within_a_few_pages(shape: str, why: str) -> None:
    calls = []

    async def fetch(cursor: str | None) -> JobPage:
        calls.append(cursor)
        n = len(calls)
        if shape == "empty":
            return JobPage((), f"c{n}", True)
        if shape == "same":
            return JobPage((_job(0),), f"c{n}", True)
        return JobPage((_job(n),), f"c{n % 2}", True)  # new jobs, but cursors repeat

    with pytest.raises(BadAnswerError, match=why) as caught:
        run(_all(fetch, collection="shop"))
    assert len(calls) <= MAX_IDLE_PAGES + 1 and "'shop'" in str(caught.value)


def test_new_jobs_on_every_page_still_end_at_max_pages() -> None:
    async def fetch(cursor: str | None) -> JobPage:
        n = int(cursor or 0)
        return JobPage((_job(n),), str(n + 1), True)

    with pytest.raises(BadAnswerError, match="after 50 pages"):
        run(_all(fetch, max_pages=50))
