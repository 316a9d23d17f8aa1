"""Delivery: a run's results drained into their file while the run is polled (SPEC §7).

The glue between the poll loop (`runs/poller.py`), the drain (`results/drain.py`) and the
state. One `Delivery` per run of a collection with a `results:` block:

- `open()` builds the drain, resuming from the checkpoint journaled in the state (blob
  kind `results`, `results/journal.py`) when it is for the same run; a fresh drain is
  journaled before its file is opened, so rows that cannot be written (a full disk, an
  unreachable store) stay pending in the state. An unfinished drain of an older run is
  kept as pending (`journal.displace`), never dropped: `results/catchup.py` finishes it.
- a publication recorded before a kill (the file built, not yet in place) is rolled
  forward (`roll_forward`), never drained again.
- `on_poll(run)` is the poller's hook: one drain step (no jobs call unless the poll shows
  newly finished jobs), under the same client and rate limiter as the polls.
- every commit of the file is journaled (durable) before the drain goes on relying on it;
- `finish(run)` drains the rest of a completed run, publishes the file and its manifest
  (the publication journaled before the renames), journals the checkpoint as finished
  with the figures the report shows, then removes the run's staging files; an adopted
  run whose file is already published is not drained again.

Retries (SPEC §8): when retries will follow a completed run (`finish(run, hold=True)`),
the run is drained whole but its file is held back (journaled `held`, nothing published);
`retry/results.py` drains each retry run beside it and publishes the one final file
(one line per request, `results/merge.py`). A `Delivery` with `journal=` and `attempts_of=`
drains a companion run of `sprunner retry` into the parent's partition, journaled under
the companion's own entry.

A drain problem (a destination that cannot be written, an API error for good) fails the
collection with a message; it never stops the polling of the run nor the other
collections. A transient API error during a step is retried at the next poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, ApiUnusableError, TransientApiError
from sprunner.api.models import Run
from sprunner.jobfile.model import (
    DesiredCollection,
    ResultsSpec,
    RunPolicy,
)
from sprunner.results.delivered import (
    Delivered,
    check_destinations,
    drain_fields,
    roll_forward,
    shown_to,
    spool_dir_of,
    sweep,
)
from sprunner.results.journal import RESULTS, CurrentSlot, Entry, Slot, displace
from sprunner.results.tally import FailedJobRow, merge_failed
from sprunner.state import StateStore
from sprunner.util.killpoints import reached

if TYPE_CHECKING:
    from sprunner.results.apitypes import JobsApi
    from sprunner.results.checkpoint import DrainCheckpoint

BLOB_KIND = RESULTS
__all__ = ["BLOB_KIND", "Delivered", "Delivery", "check_destinations", "spool_dir_of"]
MIN_DRAIN_POLL = 1.0  # seconds
DRAIN_POLL_CAP = 30.0  # the poller's own cap


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
        slot: Slot | None = None,
    ) -> None:
        assert desired.results is not None
        # Where the drain is journaled: the collection's (or `journal`'s) current slot.
        self._slot = slot or CurrentSlot(state, journal or desired.name)
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
        self._held = False
        self._staged: Mapping[str, Any] | None = None  # a displaced entry's retry stages
        # The run's jobs (Entry.total), as its start answered: journaled with the drain.
        self._total: int | None = run.total_requests or None
        self.error: str | None = None

    @property
    def name(self) -> str:
        return self._desired.name

    async def open(self) -> None:
        """Build (or resume) the drain; a drain already published is not built again."""
        from sprunner.results.drain import DrainTarget
        from sprunner.results.errors import ResultsError

        entry = self._slot.load()
        checkpoint = None
        if entry is not None and entry.checkpoint.run_id == self._run_id:
            if entry.finished and entry.report is not None:
                self._done = Delivered(**entry.report)
                return
            if entry.checkpoint.publication is not None and await self._rolled(entry):
                return
            if not entry.finished and entry.checkpoint.publication is None:
                checkpoint = self._upgraded(entry.checkpoint)
                self._held, self._staged = entry.held, entry.staged
                self._total = entry.total or self._total
        elif entry is not None and not entry.finished and isinstance(self._slot, CurrentSlot):
            from sprunner.retry import ledger as retryledger

            book = retryledger.load(self._state, self._slot.name, entry.checkpoint.run_id)
            runs = {a.attempt: a.run_id for a in book.attempts if a.run_id}
            displace(self._state, self._slot.name, entry, retry_runs=runs)
            self._warn(
                f"{self.name}: the results of run {entry.checkpoint.run_id} are not published "
                "yet: they stay pending, and the next apply finishes them"
            )
        if checkpoint is None:
            checkpoint = self._fresh()
            self._journal(checkpoint)  # pending from now until published
        target = DrainTarget(
            self.name,
            self._collection_id,
            self._run_id,
            checkpoint.paths,
            fields=drain_fields(self._spec),
            attempts_of=self._attempts_of,
            masks=self._desired,
            run_started_at=checkpoint.run_started_at,
        )
        try:
            self._drain = await open_drain(
                self._client, self._state, target, checkpoint, self._journal, self._warn
            )
        except ResultsError as e:
            self._fail(e)

    async def _rolled(self, entry: Entry) -> bool:
        """Roll a recorded publication forward; False when its file is lost (drain again)."""
        from sprunner.results.errors import ResultsError
        from sprunner.results.publication import PublicationLostError

        try:
            self._done = await asyncio.to_thread(
                roll_forward, self._desired, self._slot, entry, spool_dir_of(self._state)
            )
        except PublicationLostError as e:
            self._warn(f"{self.name}: {e}; writing the results of run {self._run_id} again")
            return False
        except ResultsError as e:
            self._fail(e)
        return True

    def _fresh(self) -> DrainCheckpoint:
        from sprunner.results.checkpoint import DrainCheckpoint
        from sprunner.results.layout import result_paths
        from sprunner.results.times import utc_text

        paths = result_paths(
            self._spec.to,
            collection=self.name,
            run_id=self._run_id,
            started=self._started,
            format=self._spec.format,
        )
        started = utc_text(self._started)
        assert started is not None
        return DrainCheckpoint.fresh(
            self._run_id, paths, collection_id=self._collection_id, run_started_at=started
        )

    def _upgraded(self, checkpoint: DrainCheckpoint) -> DrainCheckpoint:
        """A checkpoint journaled before version 2 given what its rows now carry."""
        from sprunner.results.times import utc_text

        if checkpoint.run_started_at is not None and checkpoint.collection_id is not None:
            return checkpoint
        return replace(
            checkpoint,
            collection_id=checkpoint.collection_id or self._collection_id,
            # A run start unknown (0: not given) counts as the drain's start.
            run_started_at=checkpoint.run_started_at
            or (utc_text(self._started) if self._started else checkpoint.started_at),
        )

    def _journal(
        self, checkpoint: Any, report: Mapping[str, Any] | None = None, *, held: bool = False
    ) -> None:
        """Durable before the drain relies on it: the next commit may cut the file back to it.
        `held`: drained whole, its publish left to the retries' fold (retryresults.py); a
        drain resumed from a held entry stays held."""
        self._held = self._held or held
        held = self._held and report is None
        self._slot.save(Entry(checkpoint, report, held, self._staged, self._total))

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
            self._remember_total(run)
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
            self._remember_total(run)
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
        reached("publish.finished")
        await asyncio.to_thread(sweep, self._drain.checkpoint, spool_dir_of(self._state))
        return self._done

    def _remember_total(self, run: Run) -> None:
        """A completed run's rows not all written: its jobs are counted in its entry, so a
        file published after the API lost the run says how many are missing."""
        entry = self._slot.load()
        if entry is None or entry.checkpoint.run_id != self._run_id or entry.finished:
            return
        self._total = run.total_requests
        if entry.total != self._total:
            self._slot.save(replace(entry, total=self._total))

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
