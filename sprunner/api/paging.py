"""Following a run's jobs listing page by page, with an end guaranteed.

A listing ends when a page says `has_more: false`. An API that always says `has_more`
would keep a drain paging forever (issue #23: past `run.timeout`, holding the apply). So:

- a page that brings no job not seen before in this listing is "idle"; `MAX_IDLE_PAGES`
  idle pages in a row are an error (`BadAnswerError`, that collection's call fails);
- a cursor given twice in one listing is an error (it would go round in a circle);
- a listing longer than `max_pages` is an error (default: 50,000 jobs' worth of full pages,
  the job-file cap, many times over).

`parse_jobs.job_page` already refuses a single page that does not move its cursor.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

from sprunner.api.errors import BadAnswerError
from sprunner.api.models import JobPage

MAX_IDLE_PAGES = 5
MAX_PAGES = 20_000


async def job_pages(
    fetch: Callable[[str | None], Awaitable[JobPage]],
    *,
    collection: str | None = None,
    max_pages: int = MAX_PAGES,
) -> AsyncGenerator[JobPage, None]:
    """Every page of one listing: `fetch(cursor)` from `None` on, as long as it has more."""
    seen: set[str] = set()
    cursors: set[str] = set()
    cursor: str | None = None
    idle = 0
    for _ in range(max_pages):
        page = await fetch(cursor)
        fresh = {job.job_id for job in page.items} - seen
        seen |= fresh
        yield page
        if not page.has_more or page.cursor_next is None:
            return
        idle = 0 if fresh else idle + 1
        if idle >= MAX_IDLE_PAGES:
            raise _endless(f"{idle} pages in a row brought no new job", collection)
        if page.cursor_next in cursors:
            raise _endless("a cursor came back: the pages go round in a circle", collection)
        cursors.add(page.cursor_next)
        cursor = page.cursor_next
    raise _endless(f"still more after {max_pages} pages", collection)


def _endless(why: str, collection: str | None) -> BadAnswerError:
    return BadAnswerError(
        f"the jobs listing never ends ({why}, each saying has_more)",
        call="list jobs",
        collection=collection,
    )
