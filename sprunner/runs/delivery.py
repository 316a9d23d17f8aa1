"""Delivery: a run's results drained into their file while the run is polled (SPEC §7).

The glue between the poll loop (`runs/poller.py`), the drain (`results/drain.py`) and the
state. One `Delivery` per run of a collection with a `results:` block:

- `open()` builds the drain, resuming from the checkpoint journaled in the state (blob
  kind `results`) when it is for the same run; a checkpoint for an older run is left
  (that run's partial file is abandoned, with a warning).
- `on_poll(run)` is the poller's hook: one drain step (no jobs call unless the poll shows
  newly finished jobs), under the same client and rate limiter as the polls.
- every commit of the file is journaled (durable) before the drain goes on relying on it;
- `finish(run)` drains the rest of a completed run, publishes the file and its manifest,
  and journals the checkpoint as finished with the figures the report shows; an adopted
  run whose file is already published is not drained again.

Retries (SPEC §8): when retries will follow a completed run (`finish(run, hold=True)`),
the run is drained whole but its file is held back (journaled `held`, nothing published);
`runs/retryresults.py` drains each retry run beside it and publishes the one final file
(one line per request, `results/merge.py`). A `Delivery` with `journal=` and `attempts_of=`
drains a companion run of `sprunner retry` into the parent's partition, journaled under
the companion's own entry.

A drain problem (a destination that cannot be written, an API error for good) fails the
collection with a message; it never stops the polling of the run nor the other
collections. A transient API error during a step is retried at the next poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, ApiUnusableError, TransientApiError
from sprunner.api.models import FailedJob, Run
from sprunner.errors import UsageError
from sprunner.jobfile.model import (
    DEFAULT_RESULT_FIELDS,
    DesiredCollection,
    ResultsSpec,
    RunPolicy,
)
from sprunner.results.tally import FailedJobRow
from sprunner.state import StateStore

if TYPE_CHECKING:
    from sprunner.results.apitypes import JobsApi

BLOB_KIND = "results"
MIN_DRAIN_POLL = 1.0  # seconds
DRAIN_POLL_CAP = 30.0  # the poller's own cap


@dataclass(frozen=True)
class Delivered:
    """What the report shows of a run's results: `{to, lines, bytes, expired, missing}`."""

    to: str
    lines: int
    bytes: int
    expired: int
    missing: int
    file: str | None = None

    def report(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "lines": self.lines,
            "bytes": self.bytes,
            "expired": self.expired,
            "missing": self.missing,
        }


def check_destinations(collections: Iterable[DesiredCollection]) -> None:
    """Before any API call: every `results:` destination and format can be written to.

    A missing extra (s3fs, gcsfs, pyarrow) or a URL fsspec cannot use is a usage error
    (exit 2) naming the collection and, for an extra, the extra to install.
    """
    from sprunner.results.errors import MissingExtraError, ResultsError
    from sprunner.results.storage import check_destination

    for collection in collections:
        spec = collection.results
        if spec is None:
            continue
        try:
            check_destination(spec.to, spec.format)
        except MissingExtraError as e:
            raise UsageError(f"{collection.name}: results: {e}") from e
        except ResultsError as e:
            raise UsageError(f"{collection.name}: results.to: {e}") from e


def shown_to(desired: DesiredCollection, to: str) -> str:
    """`to` as the report and the logs may show it (an env() value in it is masked)."""
    return desired.mask_value(to) or desired.mask_url(to) or to


def drain_fields(spec: ResultsSpec) -> tuple[str, ...] | None:
    """The drain's `fields`: None (every body field but screenshot) for the default."""
    return None if spec.fields == DEFAULT_RESULT_FIELDS else spec.fields


def spool_dir_of(state: StateStore) -> Path | None:
    """Object-store files are staged in the state directory (stable: a resume finds them)."""
    directory = getattr(state, "directory", None)
    return Path(directory) / "spool" if directory is not None else None


async def open_drain(
    client: ApiClient,
    state: StateStore,
    target: Any,  # results.drain.DrainTarget
    checkpoint: Any,
    on_commit: Callable[[Any], None],
    warn: Callable[[str], None],
) -> Any:
    """A `results.drain.Drain` of `target`, opened (files, spool) in a worker thread."""
    from sprunner.results.drain import Drain

    return await asyncio.to_thread(
        Drain,
        # The drain passes only the orders the client's Literal types allow.
        cast("JobsApi", client),
        target,
        checkpoint=checkpoint,
        spool_dir=spool_dir_of(state),
        on_commit=on_commit,
        warn=warn,
    )


class Delivery:
    """Drains one run of one collection; see the module docstring."""

    def __init__(
        self,
        client: ApiClient,
        state: StateStore,
        desired: DesiredCollection,
        run: Run,
        *,
        started_at: float,
        warn: Callable[[str], None],
        journal: str | None = None,
        attempts_of: Mapping[tuple[str, str | None], int] | None = None,
    ) -> None:
        assert desired.results is not None
        self._journal_name = journal or desired.name  # the state entry of the checkpoint
        self._attempts_of = dict(attempts_of or {})
        self._client = client
        self._state = state
        self._desired = desired
        self._spec: ResultsSpec = desired.results
        self._run_id = run.run_id
        self._collection_id = run.collection_id
        self._started = run.created_at if run.created_at is not None else started_at
        self._warn = warn
        self._drain: Any = None  # results.drain.Drain, imported lazily
        self._done: Delivered | None = None
        self.error: str | None = None

    @property
    def name(self) -> str:
        return self._desired.name

    async def open(self) -> None:
        """Build (or resume) the drain; a drain already published is not built again."""
        from sprunner.results.drain import DrainTarget
        from sprunner.results.errors import ResultsError
        from sprunner.results.layout import result_paths

        journaled = self._journaled()
        checkpoint = None
        if journaled is not None:
            saved, report = journaled
            if saved.run_id == self._run_id and saved.finished and report is not None:
                self._done = Delivered(**report)
                return
            if saved.run_id == self._run_id and not saved.finished:
                checkpoint = saved
            elif not saved.finished:
                self._warn(
                    f"{self.name}: the results of run {saved.run_id} were left incomplete "
                    f"({saved.lines} lines in {saved.data}.part)"
                )
        paths = result_paths(
            self._spec.to,
            collection=self.name,
            run_id=self._run_id,
            started=self._started,
            format=self._spec.format,
        )
        target = DrainTarget(
            self.name,
            self._collection_id,
            self._run_id,
            paths,
            fields=drain_fields(self._spec),
            attempts_of=self._attempts_of,
            masks=self._desired,
        )
        try:
            self._drain = await open_drain(
                self._client, self._state, target, checkpoint, self._journal, self._warn
            )
        except ResultsError as e:
            self._fail(e)

    def _journaled(self) -> tuple[Any, Mapping[str, Any] | None] | None:
        from sprunner.results.checkpoint import DrainCheckpoint

        blob = self._state.get_blob(self._journal_name, BLOB_KIND)
        if not isinstance(blob, Mapping) or not isinstance(blob.get("checkpoint"), Mapping):
            return None
        try:
            checkpoint = DrainCheckpoint.from_json(blob["checkpoint"])
        except ValueError:
            return None
        report = blob.get("report")
        return checkpoint, report if isinstance(report, Mapping) else None

    def _journal(
        self, checkpoint: Any, report: Mapping[str, Any] | None = None, *, held: bool = False
    ) -> None:
        """Durable before the drain relies on it: the next commit may cut the file back to it.
        `held`: drained whole, its publish left to the retries' fold (retryresults.py)."""
        value = {"checkpoint": checkpoint.to_json(), "report": report, "held": held}
        self._state.put_blob(self._journal_name, BLOB_KIND, value, durable=True)

    def _fail(self, error: BaseException) -> None:
        self.error = f"results of run {self._run_id}: {error}"
        self._warn(f"{self.name}: {self.error}")
        if self._drain is not None:
            self._drain.close()
            self._drain = None

    async def on_poll(self, run: Run) -> None:
        """The poller's hook: drain what the poll shows as newly finished."""
        if self._drain is None or run.done:
            return  # a completed run is drained whole by finish()
        from sprunner.results.errors import ResultsError

        try:
            await self._drain.step(run)
        except ApiUnusableError:
            raise
        except TransientApiError:
            pass  # the client already retried; the next poll tries again from the mark
        except (ApiError, ResultsError) as e:
            self._fail(e)

    async def finish(self, run: Run, *, hold: bool = False) -> Delivered | None:
        """Drain the rest of a completed run and publish; None when that failed, or when
        `hold` (retries follow): drained and journaled `held`, not published."""
        if self._done is not None:
            return self._done
        if self._drain is None:
            return None
        from sprunner.results.errors import ResultsError

        async def refetch() -> Persisted:
            again = await self._client.get_run(self._collection_id, self._run_id, name=self.name)
            return Persisted(again)

        try:
            if hold:
                await self._drain.settle(Persisted(run), refetch=refetch)
                self._journal(self._drain.checkpoint, held=True)
                return None
            outcome = await self._drain.finish(Persisted(run), refetch=refetch)
        except ApiUnusableError:
            raise
        except (ApiError, ResultsError) as e:
            self._fail(e)
            return None
        self._done = Delivered(
            to=shown_to(self._desired, outcome.to),
            lines=outcome.lines,
            bytes=outcome.bytes,
            expired=outcome.expired,
            missing=outcome.missing,
            file=outcome.file.data,
        )
        self._journal(self._drain.checkpoint, self._done.__dict__)
        return self._done

    @property
    def failed_jobs(self) -> tuple[FailedJobRow, ...]:
        """Every failed and timed-out job as the listing told it (custom_id, code, block)."""
        return () if self._drain is None else tuple(self._drain.failed_jobs)

    def close(self) -> None:
        """Stop without publishing (interrupted, timed out): the partial file stays."""
        if self._drain is not None:
            self._drain.close()


class Persisted:
    """A run answer whose `all_jobs_persisted` is unknown (None) counts as persisted.

    Older deployments do not say; waiting for a flag they never send would only delay the
    file by the drain's persist timeout.
    """

    def __init__(self, run: Run) -> None:
        self._run = run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)

    @property
    def all_jobs_persisted(self) -> bool:
        return self._run.all_jobs_persisted is not False


def max_poll_delay(policy: RunPolicy) -> float:
    """While draining, poll every `poll_interval` (at least 1 s apart, at most the poller's
    cap): without results, the poller plans one poll just after the predicted end, which
    would leave most of the data to read after the run, with the API idle meanwhile. The
    listing calls are bounded by the jobs (pages of 100) either way; the extra cost is one
    poll per `poll_interval`, as the SDK's `iter_results` makes."""
    return min(max(policy.poll_interval, MIN_DRAIN_POLL), DRAIN_POLL_CAP)


async def begin(
    client: ApiClient,
    state: StateStore,
    desired: DesiredCollection,
    run: Run,
    *,
    started_at: float,
    warn: Callable[[str], None],
) -> Delivery | None:
    """The delivery of `run`, opened (resumed when journaled); None without `results:`."""
    if desired.results is None:
        return None
    delivery = Delivery(client, state, desired, run, started_at=started_at, warn=warn)
    await delivery.open()
    return delivery


async def end(
    delivery: Delivery | None, run: Run, *, timed_out: bool, hold: bool = False
) -> tuple[Run, Delivered | None]:
    """Publish a completed run's results: the run (with the drain's failed-job list) and
    what was delivered (None without `results:`, for a run not waited to its end, when
    held for the retries that follow (`hold`), or when the delivery failed: then
    `delivery.error` says why).

    A run we stopped waiting for keeps its partial file (the drain stays journaled: a
    later adoption of the run, or `sprunner results`, completes it).
    """
    if delivery is None or timed_out:
        return run, None
    delivered = await delivery.finish(run, hold=hold)
    rows = delivery.failed_jobs
    if delivery.error is not None or not rows:
        return run, delivered
    return replace(run, failed_jobs=merge_failed(run.failed_jobs, rows)), delivered


def merge_failed(known: Iterable[FailedJob], rows: Iterable[FailedJobRow]) -> tuple[FailedJob, ...]:
    """The drain's failed and timed-out jobs, each with the run's error text when it has one.

    The URL is the run answer's where it has the job: a row's is the masked render
    (`rows.mask_row`), which two requests that differ by a secret share, so it could not
    tell which request the job is (`sprunner.shown` does that, and shows it masked)."""
    errors = {job.job_id: job.error for job in known}
    urls = {job.job_id: job.url for job in known}
    return tuple(
        FailedJob(
            job_id=row.job_id,
            url=urls.get(row.job_id) or row.url or "",
            status=row.status,
            error=errors.get(row.job_id) or row.message or row.status,
            custom_id=row.custom_id,
            status_code=row.status_code,
            block_reason=row.block_reason,
        )
        for row in rows
    )
