"""The drain of one run: its jobs listing, read while the run goes on, into a result file.

Called from the poll loop: `step(run)` after each poll, `finish(run)` once it completed.

Invariants:
- No jobs call when a poll shows no newly finished job (success + failed + timeout did
  not grow since the last listing).
- Each listing asks for jobs completed after the high-water mark minus `TIE_MARGIN`
  (`since_completed_at` is strict), in `completed_at` order: jobs tied with the mark are
  read again and deduplicated by id, so a tie is never dropped and no job written twice.
- A finished job whose body is not inline (over the inline cap) is fetched alone; a body
  that expired or was lost still gets its row (metadata, `result_unavailable`) and is
  counted and warned about.
- At most one page of bodies (plus one body fetched alone) is held at a time.
- The checkpoint moves only at a commit of the file, so a kill between two commits loses
  nothing: the resume cuts the file back to the checkpoint and reads those jobs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sprunner.api.paging import job_pages
from sprunner.results.apitypes import (
    FinishedRun,
    Job,
    JobPage,
    JobsApi,
    RunProgress,
    unavailable_code,
)
from sprunner.results.checkpoint import DrainCheckpoint
from sprunner.results.errors import ResumeImpossibleError
from sprunner.results.layout import ResultPaths
from sprunner.results.publication import Publication, PublishedFile
from sprunner.results.rows import Masks, mask_row
from sprunner.results.rowschema import job_row
from sprunner.results.tally import FINISHED_STATUSES, FailedJobRow, Tally
from sprunner.results.times import before, format_time
from sprunner.results.writer import ResultWriter

TIE_MARGIN = timedelta(milliseconds=1)
PAGE_WITH_RESULTS = 100  # the API's cap when include_results=true
PAGE_WITHOUT_RESULTS = 1000
# Waits (seconds) for a body still `result_pending` at the end before it counts as missing.
PENDING_RETRIES = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class DrainTarget:
    """Which run to drain, and how its rows look."""

    collection: str
    collection_id: str
    run_id: str
    paths: ResultPaths
    fields: tuple[str, ...] | None = None
    attempts: int = 1  # the `attempts` column: runs the request took, this one included
    # Per request (url, custom_id), where it differs from `attempts` (`sprunner retry`).
    attempts_of: Mapping[tuple[str, str | None], int] = field(default_factory=dict)
    masks: Masks | None = None  # env() values masked in url and custom_id (rows.mask_row)
    # The run start every row carries (UTC text); a resumed drain keeps its checkpoint's.
    run_started_at: str | None = None


@dataclass(frozen=True)
class DrainOutcome:
    """A published result file, for the report: `results: {to, lines, bytes, expired, missing}`."""

    to: str
    file: PublishedFile
    lines: int
    bytes: int
    expired: int
    missing: int
    counts: Mapping[str, int]
    failed_jobs: tuple[FailedJobRow, ...]

    def report(self) -> dict[str, Any]:
        from sprunner.results.delivered import reported

        return reported(self)


def _finished(run: RunProgress) -> int:
    return run.success_requests + run.failed_requests + run.timeout_requests


class Drain:
    """Drains one run into its result file; see the module docstring for the rules.

    The constructor opens the file (and, on a resume, reads the committed rows back to
    rebuild ids, counts and failed jobs): blocking I/O, so from async code build it with
    `asyncio.to_thread`. `step` and `finish` of one drain must not overlap.
    """

    def __init__(
        self,
        api: JobsApi,
        target: DrainTarget,
        *,
        checkpoint: DrainCheckpoint | None = None,
        spool_dir: Path | None = None,
        storage_options: Mapping[str, Any] | None = None,
        on_commit: Callable[[DrainCheckpoint], None] | None = None,
        warn: Callable[[str], None],
    ) -> None:
        self._api = api
        self._target = target
        self._on_commit = on_commit
        self._warn = warn
        self._tally = Tally()
        self.restarted = False
        if checkpoint is None:
            checkpoint = DrainCheckpoint.fresh(
                target.run_id,
                target.paths,
                collection_id=target.collection_id,
                run_started_at=target.run_started_at or format_time(datetime.now(timezone.utc)),
            )
        elif checkpoint.finished or checkpoint.publication is not None:
            # Draining again would overwrite a published file with what is still kept;
            # a recorded publication is rolled forward (`publication.complete`), not redone.
            raise ValueError(f"the results of run {target.run_id} are already published")
        # A resumed drain's rows carry what its first rows carried (its checkpoint's).
        started = checkpoint.run_started_at or target.run_started_at
        checkpoint = replace(checkpoint, run_started_at=started)
        self._target = replace(target, paths=checkpoint.paths, run_started_at=started)
        where: dict[str, Any] = {"spool_dir": spool_dir, "storage_options": storage_options}
        try:
            self._writer = ResultWriter(checkpoint.paths, resume=checkpoint.position, **where)
        except ResumeImpossibleError as e:
            warn(f"{target.collection}: {e}; writing the results of run {target.run_id} again")
            checkpoint = checkpoint.restarted()
            self.restarted = True
            self._writer = ResultWriter(checkpoint.paths, **where)
        for row in self._writer.committed_rows():
            self._tally.add(row)
        self._checkpoint = checkpoint

    @classmethod
    def resume(
        cls, api: JobsApi, target: DrainTarget, checkpoint: DrainCheckpoint, **kw: Any
    ) -> Drain:
        """Continue an interrupted drain from its journaled checkpoint."""
        return cls(api, target, checkpoint=checkpoint, **kw)

    @property
    def checkpoint(self) -> DrainCheckpoint:
        """The progress as of the last commit (journal it before relying on it)."""
        return self._checkpoint

    @property
    def failed_jobs(self) -> tuple[FailedJobRow, ...]:
        return tuple(self._tally.failed)

    async def step(self, run: RunProgress) -> bool:
        """Read the jobs finished since the last listing, if the poll shows any; True if it did."""
        finished = _finished(run)
        if finished <= self._checkpoint.seen_finished:
            return False
        # A body not stored yet (result_pending) leaves its jobs for the next poll to retry.
        if not await self._drain_listing(defer_pending=True):
            self._checkpoint = replace(self._checkpoint, seen_finished=finished)
        return True

    async def _drain_listing(self, *, defer_pending: bool) -> bool:
        """Read from the mark to the end; True if it stopped at a body still pending."""
        mark = self._checkpoint.high_water
        since = before(mark, TIE_MARGIN) if mark else None
        query = {"since_completed_at": since, "include_results": True}
        pages = self._pages(limit=PAGE_WITH_RESULTS, order_by="completed_at", **query)
        async with contextlib.aclosing(pages):  # closed also when we stop early
            async for page in pages:
                if await self._write_jobs(page.items, defer_pending=defer_pending):
                    return True
        return False

    def _pages(self, **query: Any) -> AsyncGenerator[JobPage, None]:
        """The run's finished jobs, page by page, in ascending `order_by` order. Bounded: a
        listing that always says has_more ends in an error (`api/paging.py`)."""
        t = self._target

        def fetch(cursor: str | None) -> Awaitable[JobPage]:
            return self._api.list_jobs(
                t.collection_id, t.run_id, name=t.collection, cursor=cursor,
                status_filter=FINISHED_STATUSES, order_dir="asc", **query,
            )  # fmt: skip

        return job_pages(fetch, collection=t.collection)

    async def _write_jobs(self, jobs: Collection[Job], *, defer_pending: bool) -> bool:
        """Write the new jobs of one page in order, then commit and move the mark.

        With `defer_pending`, stop before the first job whose body is still pending (True):
        the mark stays before it, so the next listing reads it again.
        """
        batch: list[dict[str, Any]] = []
        deferred = False
        for job in jobs:
            if job.job_id in self._tally.written or job.status not in FINISHED_STATUSES:
                continue
            body, unavailable, alone = job.result, None, False
            if job.status == "completed" and job.result is None:
                body, unavailable = await self._fetch_alone(job)
                alone = True
                if unavailable == "result_pending" and defer_pending:
                    deferred = True
                    break
                if unavailable is not None:
                    self._warn_unavailable(job, unavailable)
            row = job_row(
                job,
                body,
                run_id=self._target.run_id,
                run_started_at=self._target.run_started_at,
                fields=self._target.fields,
                attempts=self._target.attempts_of.get(
                    (job.url, job.custom_id), self._target.attempts
                ),
                unavailable=unavailable,
            )
            mask_row(row, self._target.masks)
            self._tally.add(row)
            batch.append(row)
            if alone:  # a big body: write it now rather than hold it with the page's
                await asyncio.to_thread(self._write_rows, batch)
                batch = []
        await asyncio.to_thread(self._write_rows, batch)
        await self._commit(
            [
                (j.job_id, j.completed_at)
                for j in jobs
                if j.completed_at and j.job_id in self._tally.written
            ]
        )
        return deferred

    def _write_rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._writer.write(row)

    async def _fetch_alone(self, job: Job) -> tuple[Mapping[str, Any] | None, str | None]:
        target = self._target
        try:
            body = await self._api.get_job_result(
                target.collection_id, target.run_id, job.job_id, name=target.collection
            )
        except Exception as e:
            code = unavailable_code(e)
            if code is None:
                raise
            return None, code
        return body, None

    def _warn_unavailable(self, job: Job, code: str) -> None:
        what = "expired" if code == "result_expired" else f"unavailable ({code})"
        self._warn(
            f"{self._target.collection}: the result of job {job.job_id} ({job.url}) is {what}: "
            "its row has no body"
        )

    async def _commit(self, written: list[tuple[str, str]]) -> None:
        """Make the page durable, then move the mark over the (job id, completed_at) written."""
        position = await asyncio.to_thread(self._writer.commit)
        self._checkpoint = self._checkpoint.advanced(written, position)
        if self._on_commit is not None:
            self._on_commit(self._checkpoint)

    async def finish(self, run: FinishedRun, **settle: Any) -> DrainOutcome:
        """Drain the rest of a completed run (`settle`, same keywords), then publish the
        file and its manifest."""
        return await asyncio.to_thread(self._publish, await self.settle(run, **settle))

    async def settle(
        self,
        run: FinishedRun,
        *,
        refetch: Callable[[], Awaitable[FinishedRun]] | None = None,
        persist_timeout: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> FinishedRun:
        """Drain the rest of a completed run and commit, without publishing: the rows stay
        in the `.part` (the checkpoint says how many) for a caller that folds them with
        other runs' rows (retries, SPEC §8). Returns the run as last read."""
        run = await self._await_persisted(run, refetch, persist_timeout, sleep)
        for delay in (*PENDING_RETRIES, None):
            if len(self._tally.written) >= _finished(run):
                break
            # The last pass writes a still-pending body as missing rather than wait forever.
            if not await self._drain_listing(defer_pending=delay is not None):
                break
            if delay is not None:
                await sleep(delay)
        if len(self._tally.written) < _finished(run) and run.all_jobs_persisted:
            await self._sweep()
        self._checkpoint = replace(self._checkpoint, seen_finished=_finished(run))
        return run

    async def _await_persisted(
        self,
        run: FinishedRun,
        refetch: Callable[[], Awaitable[FinishedRun]] | None,
        timeout: float,
        sleep: Callable[[float], Awaitable[None]],
    ) -> FinishedRun:
        """Wait (bounded) for the listing to be whole; after the timeout, drain what is there."""
        deadline, delay = time.monotonic() + timeout, 0.5
        while not run.all_jobs_persisted and refetch is not None:
            if time.monotonic() >= deadline:
                self._warn(
                    f"{self._target.collection}: run {self._target.run_id} still has jobs not "
                    "persisted; the jobs not listed yet are counted as missing"
                )
                break
            await sleep(delay)
            delay = min(delay * 2, 5.0)
            run = await refetch()
        return run

    async def _sweep(self) -> None:
        """Whole listing by id, for jobs persisted after the mark passed them (rare)."""
        async for page in self._pages(limit=PAGE_WITHOUT_RESULTS, order_by="id"):
            # Without include_results every body is fetched alone: only the stragglers.
            stragglers = [
                replace(j, result=None, has_result=False)
                for j in page.items
                if j.job_id not in self._tally.written
            ]
            await self._write_jobs(stragglers, defer_pending=False)

    def _publish(self, run: FinishedRun) -> DrainOutcome:
        """Publish the file: the publication recorded (`on_commit`) before any rename; the
        finished checkpoint is left to the caller to journal, with what it reports."""
        tally, target = self._tally, self._target
        missing = tally.lost + max(0, run.total_requests - len(tally.written))
        if tally.expired or missing:
            self._warn(
                f"{target.collection}: run {target.run_id}: {tally.expired} result(s) expired "
                f"and {missing} missing before they could be read (see the manifest)"
            )
        manifest = self._checkpoint.manifest_document(target.collection, run.total_requests)
        manifest.update(
            counts={s: tally.counts[s] for s in FINISHED_STATUSES},
            expired=tally.expired,
            missing=missing,
            fields=list(target.fields) if target.fields is not None else None,
        )

        def record(publication: Publication) -> None:
            self._checkpoint = replace(self._checkpoint, publication=publication)
            if self._on_commit is not None:
                self._on_commit(self._checkpoint)

        published = self._writer.publish(manifest, record=record)
        self._checkpoint = replace(
            self._checkpoint, lines=published.lines, bytes=published.bytes, finished=True
        )
        return DrainOutcome(
            to=target.paths.to,
            file=published,
            lines=published.lines,
            bytes=published.bytes,
            expired=tally.expired,
            missing=missing,
            counts=dict(tally.counts),
            failed_jobs=tuple(tally.failed),
        )

    def close(self) -> None:
        """Stop without publishing (interrupted): the partial file stays for a resume."""
        self._writer.close()
