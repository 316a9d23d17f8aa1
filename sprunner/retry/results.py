"""The results of retried runs (SPEC §7 meets §8): where each retry run's rows go.

Within an apply (`RetryResults`): the results file of a run whose failed jobs are retried
has exactly one line per request, with its final status and `attempts`.

- The first run is drained whole but not published (`Delivery.finish(hold=True)`: its
  rows stay in its `.part`, the checkpoint is journaled `held`).
- Each retry run is drained while it is polled into a staged `.part` of its own beside
  the first (`results/merge.staging_paths`), with its own checkpoint journaled in the
  parent's `results.retry` blob at every commit: a kill mid-drain resumes exactly (the
  retry run is adopted by the ledger of `retry/loop.py`, its drain goes on from the mark).
- After the last retry, `publish` folds the staged rows into the final file
  (`results/merge.fold`); its publication is journaled in the parent's entry before
  anything is renamed, then the file appears under its final name once, complete; then
  the parent's checkpoint is journaled finished with the figures the report shows, and
  the staged files are removed. A kill before the publication is journaled folds again
  (the staged files are only read); after it, the publication is rolled forward
  (`resultsfile.roll_forward`), and an adopted run reports the journaled figures.
- A fold that fails (a full disk, an unreachable store) leaves the parent's entry held:
  its results are pending, and the next apply folds them (`results/catchup.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from sprunner import __version__
from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, ApiUnusableError, TransientApiError
from sprunner.api.models import Run
from sprunner.jobfile.model import DesiredCollection
from sprunner.results.checkpoint import DrainCheckpoint
from sprunner.results.delivered import Delivered, drain_fields, shown_to, spool_dir_of, sweep
from sprunner.results.delivery import Persisted, open_drain
from sprunner.results.errors import ResultsError
from sprunner.results.journal import STAGED, CurrentSlot, Entry, Slot
from sprunner.state import StateStore
from sprunner.util.killpoints import reached

if TYPE_CHECKING:
    from sprunner.results.publication import Publication

STAGED_KIND = STAGED


class Hook(Protocol):
    """The results of one retry run, as its poll loop drives them."""

    @property
    def error(self) -> str | None: ...

    async def on_poll(self, run: Run) -> None: ...

    async def done(self, run: Run) -> Mapping[str, Any] | None:
        """The run completed: drain the rest; the report's `results` of it, if published."""

    def close(self) -> None: ...


class RunResults(Protocol):
    async def begin(self, attempt: int, run: Run, started_at: float) -> Hook | None: ...


class RetryResults:
    """The one results file of `parent` and its retry runs; see the module docstring."""

    def __init__(
        self,
        client: ApiClient,
        state: StateStore,
        desired: DesiredCollection,
        parent: Run,
        first: DrainCheckpoint,
        *,
        warn: Callable[[str], None],
        published: Mapping[str, Any] | None = None,
        slot: Slot | None = None,
        staged: Mapping[str, Any] | None = None,
    ) -> None:
        """`slot` and `staged`: where the parent's entry and its retries' stages are kept
        (a displaced held entry carries its stages: `results.journal.displace`)."""
        self._client, self._state, self._desired = client, state, desired
        self._parent, self._first, self._warn = parent, first, warn
        self._published = published
        self._slot = slot or CurrentSlot(state, desired.name)
        self._stages = staged
        self.error: str | None = None

    @classmethod
    def open(
        cls,
        client: ApiClient,
        state: StateStore,
        desired: DesiredCollection,
        parent: Run,
        *,
        warn: Callable[[str], None],
    ) -> RetryResults | None:
        """The parent's held file (or, after a kill, its final file already published);
        None without `results:` or when its delivery failed (the collection failed)."""
        if desired.results is None:
            return None
        entry = CurrentSlot(state, desired.name).load()
        if entry is None or entry.checkpoint.run_id != parent.run_id:
            return None
        if entry.finished and entry.report is not None:
            shown = Delivered(**entry.report).report()  # as journaled: `file` is not reported
            done = cls(client, state, desired, parent, entry.checkpoint, warn=warn, published=shown)
            done.cleanup()  # a kill may have come before the staged files were removed
            return done
        if not entry.held:
            return None
        return cls(client, state, desired, parent, entry.checkpoint, warn=warn)

    # -- the staged drains of the retry runs ----------------------------------------------
    def staged(self) -> dict[str, Any]:
        blob = (
            self._stages
            if self._stages is not None
            else self._state.get_blob(self._desired.name, STAGED_KIND)
        )
        if not isinstance(blob, Mapping) or blob.get("parent_run") != self._parent.run_id:
            return {}
        attempts = blob.get("attempts")
        return dict(attempts) if isinstance(attempts, Mapping) else {}

    def journal(self, attempt: int, run_id: str, checkpoint: Any, *, settled: bool) -> None:
        staged = self.staged()
        staged[str(attempt)] = {
            "run_id": run_id,
            "checkpoint": checkpoint.to_json(),
            "settled": settled,
        }
        value = {"parent_run": self._parent.run_id, "attempts": staged}
        if self._stages is not None:  # a displaced entry: its stages live in its own entry
            self._stages = value
            entry = self._slot.load()
            if entry is not None:
                self._slot.save(dataclasses.replace(entry, staged=value))
            return
        self._state.put_blob(self._desired.name, STAGED_KIND, value, durable=True)

    async def begin(self, attempt: int, run: Run, started_at: float) -> Hook | None:
        if self._published is not None:
            return None  # folded and published before a kill: nothing to drain again
        from sprunner.results.drain import DrainTarget
        from sprunner.results.errors import ResultsError
        from sprunner.results.merge import staging_paths

        entry = self.staged().get(str(attempt))
        saved = (
            DrainCheckpoint.read(entry.get("checkpoint")) if isinstance(entry, Mapping) else None
        )
        if saved is not None and (saved.run_id != run.run_id or saved.finished):
            saved = None
        if saved is not None and isinstance(entry, Mapping) and entry.get("settled"):
            return _Settled()
        assert self._desired.results is not None
        target = DrainTarget(
            self._desired.name + ".retry",
            run.collection_id,
            run.run_id,
            staging_paths(self._first.paths, attempt),
            fields=drain_fields(self._desired.results),
            attempts=attempt + 1,
            masks=self._desired,
        )
        staged = _Staged(self, self._client, attempt, run, target.collection)
        try:
            staged.drain = await open_drain(
                self._client,
                self._state,
                target,
                saved,
                lambda cp: self.journal(attempt, run.run_id, cp, settled=False),
                self._warn,
            )
        except ResultsError as e:
            staged.fail(e)
        return staged

    # -- the final file -------------------------------------------------------------------
    async def publish(self, retried: Sequence[tuple[int, str]]) -> Mapping[str, Any] | None:
        """Fold the first run and the completed retry runs `retried` ((attempt, run id),
        in order) into the final file; the report's `results`, None when it failed."""
        if self._published is not None:
            return self._published
        if self.error is not None:
            return None
        from sprunner.results.merge import Staged, fold

        staged = self.staged()
        retries = []
        for attempt, run_id in retried:
            entry = staged.get(str(attempt))
            if not isinstance(entry, Mapping) or not entry.get("settled"):
                entry = {}
            saved = DrainCheckpoint.read(entry.get("checkpoint"))
            if saved is None or saved.run_id != run_id:
                self.fail(f"the results of retry run {run_id} were not drained whole")
                return None
            retries.append(Staged(run_id, saved.paths, saved.lines))
        first = Staged(self._first.run_id, self._first.paths, self._first.lines)

        def record(publication: Publication) -> None:
            self._slot.save(Entry(replace(self._first, publication=publication), held=True))

        try:
            published, manifest = await asyncio.to_thread(
                fold,
                self._first.paths,
                first,
                retries,
                self._manifest(),
                run_started_at=self._first.run_started_at,
                spool_dir=spool_dir_of(self._state),
                record=record,
            )
        except ResultsError as e:
            self.fail(str(e))
            return None
        delivered = Delivered(
            to=shown_to(self._desired, self._first.to),
            lines=published.lines,
            bytes=published.bytes,
            expired=int(manifest["expired"]),
            missing=int(manifest["missing"]),
            file=published.data,
        )
        if delivered.expired or delivered.missing:
            self._warn(
                f"{self._desired.name}: run {self._parent.run_id}: {delivered.expired} "
                f"result(s) expired and {delivered.missing} missing (see the manifest)"
            )
        self._finished(delivered)
        return delivered.report()

    def _manifest(self) -> dict[str, Any]:
        assert self._desired.results is not None
        fields = drain_fields(self._desired.results)
        return {
            "version": 1,
            "run_id": self._parent.run_id,
            "collection": self._desired.name,
            "collection_id": self._parent.collection_id,
            "total_requests": self._parent.total_requests,
            "started_at": self._first.started_at,
            "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "fields": list(fields) if fields is not None else None,
            "sprunner_version": __version__,
        }

    def _finished(self, delivered: Delivered) -> None:
        """Journal the final figures (durable), then drop the staged files."""
        done = replace(self._first, finished=True, lines=delivered.lines, bytes=delivered.bytes)
        self._slot.save(Entry(done, delivered.__dict__))
        reached("publish.finished")
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the staged files of the parent and of every retry (a retry run not
        waited to its end, never folded, included) and their record."""
        if isinstance(self._slot, CurrentSlot) and self.staged():
            self._state.put_blob(self._desired.name, STAGED_KIND, None)
        sweep(self._first, spool_dir_of(self._state))

    def fail(self, error: str) -> None:
        self.error = f"results of run {self._parent.run_id}: {error}"
        self._warn(f"{self._desired.name}: {self.error}")


class _Settled:
    """A retry run whose rows were all staged before a kill: nothing left to drain."""

    error: str | None = None

    async def on_poll(self, run: Run) -> None:
        return None

    async def done(self, run: Run) -> Mapping[str, Any] | None:
        return None

    def close(self) -> None:
        return None


class _Staged:
    """One retry run drained into its staged `.part` (never published on its own)."""

    def __init__(
        self, owner: RetryResults, client: ApiClient, attempt: int, run: Run, name: str
    ) -> None:
        self._owner, self._client, self._attempt, self._run = owner, client, attempt, run
        self._name = name  # the companion's, for the client's logs
        self.drain: Any = None  # results.drain.Drain
        self.error: str | None = None

    def fail(self, error: BaseException) -> None:
        self.error = f"retry run {self._run.run_id}: {error}"
        self._owner.fail(self.error)
        self.close()

    async def on_poll(self, run: Run) -> None:
        if self.drain is None or run.done:
            return
        from sprunner.results.errors import ResultsError

        try:
            await self.drain.step(run)
        except ApiUnusableError:
            raise
        except TransientApiError:
            pass  # the next poll tries again from the mark
        except (ApiError, ResultsError) as e:
            self.fail(e)

    async def done(self, run: Run) -> Mapping[str, Any] | None:
        if self.drain is None:
            return None
        from sprunner.results.errors import ResultsError

        client, name = self._client, self._name

        async def refetch() -> Persisted:
            return Persisted(await client.get_run(run.collection_id, run.run_id, name=name))

        try:
            await self.drain.settle(Persisted(run), refetch=refetch)
        except ApiUnusableError:
            raise
        except (ApiError, ResultsError) as e:
            self.fail(e)
            return None
        self._owner.journal(self._attempt, run.run_id, self.drain.checkpoint, settled=True)
        reached("retry.settled")
        return None

    def close(self) -> None:
        if self.drain is not None:
            self.drain.close()
            self.drain = None
