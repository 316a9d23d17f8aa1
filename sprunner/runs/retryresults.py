"""The results of retried runs (SPEC §7 meets §8): where each retry run's rows go.

Within an apply (`RetryResults`): the results file of a run whose failed jobs are retried
has exactly one line per request, with its final status and `attempts`.

- The first run is drained whole but not published (`Delivery.finish(hold=True)`: its
  rows stay in its `.part`, the checkpoint is journaled `held`).
- Each retry run is drained while it is polled into a staged `.part` of its own beside
  the first (`results/merge.staging_paths`), with its own checkpoint journaled in the
  parent's `results.retry` blob at every commit: a kill mid-drain resumes exactly (the
  retry run is adopted by the ledger of `runs/retry.py`, its drain goes on from the mark).
- After the last retry, `publish` folds the staged rows into the final file
  (`results/merge.fold`), which appears under its final name once, complete; then the
  parent's checkpoint is journaled finished with the figures the report shows, and the
  staged files are removed. A kill before that journal write folds again (the staged
  files are only read); after it, an adopted run reports the journaled figures.

`sprunner retry REPORT.json` (`CommandResults`): SPEC §8 says nothing of its results; the
file published for the earlier run is not rewritten (it may have been read, copied or
loaded since). Each companion run's rows go to the collection's results destination as a
run of their own: `collection=<name>/date=<day>/<retry run id>.<format>` and its manifest,
one row per re-run request with its `attempts`; readers take, per request, the row with the
most attempts. Its drain is journaled under the companion's entry, so an adopted run's
file is finished, never doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from sprunner import __version__
from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, ApiUnusableError, TransientApiError
from sprunner.api.models import Run
from sprunner.jobfile.model import DesiredCollection
from sprunner.runs.delivery import (
    BLOB_KIND,
    Delivered,
    Delivery,
    Persisted,
    drain_fields,
    open_drain,
    shown_to,
    spool_dir_of,
)
from sprunner.state import StateStore

if TYPE_CHECKING:
    from sprunner.results.checkpoint import DrainCheckpoint

STAGED_KIND = "results.retry"


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


def _checkpoint(value: Any) -> DrainCheckpoint | None:
    from sprunner.results.checkpoint import DrainCheckpoint

    if not isinstance(value, Mapping):
        return None
    try:
        return DrainCheckpoint.from_json(value)
    except ValueError:
        return None


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
    ) -> None:
        self._client, self._state, self._desired = client, state, desired
        self._parent, self._first, self._warn = parent, first, warn
        self._published = published
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
        blob = state.get_blob(desired.name, BLOB_KIND)
        first = _checkpoint(blob.get("checkpoint")) if isinstance(blob, Mapping) else None
        if first is None or first.run_id != parent.run_id:
            return None
        report = blob.get("report")
        if first.finished and isinstance(report, Mapping):
            shown = Delivered(**report).report()  # as journaled: `file` is not reported
            return cls(client, state, desired, parent, first, warn=warn, published=shown)
        if not blob.get("held"):
            return None
        return cls(client, state, desired, parent, first, warn=warn)

    # -- the staged drains of the retry runs ----------------------------------------------
    def _staged(self) -> dict[str, Any]:
        blob = self._state.get_blob(self._desired.name, STAGED_KIND)
        if not isinstance(blob, Mapping) or blob.get("parent_run") != self._parent.run_id:
            return {}
        attempts = blob.get("attempts")
        return dict(attempts) if isinstance(attempts, Mapping) else {}

    def journal(self, attempt: int, run_id: str, checkpoint: Any, *, settled: bool) -> None:
        staged = self._staged()
        staged[str(attempt)] = {
            "run_id": run_id,
            "checkpoint": checkpoint.to_json(),
            "settled": settled,
        }
        value = {"parent_run": self._parent.run_id, "attempts": staged}
        self._state.put_blob(self._desired.name, STAGED_KIND, value, durable=True)

    async def begin(self, attempt: int, run: Run, started_at: float) -> Hook | None:
        if self._published is not None:
            return None  # folded and published before a kill: nothing to drain again
        from sprunner.results.drain import DrainTarget
        from sprunner.results.errors import ResultsError
        from sprunner.results.merge import staging_paths

        entry = self._staged().get(str(attempt))
        saved = _checkpoint(entry.get("checkpoint")) if isinstance(entry, Mapping) else None
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
        from sprunner.results.errors import ResultsError
        from sprunner.results.merge import Staged, fold, staging_paths

        staged = self._staged()
        retries = []
        for attempt, run_id in retried:
            entry = staged.get(str(attempt))
            if not isinstance(entry, Mapping) or not entry.get("settled"):
                entry = {}
            saved = _checkpoint(entry.get("checkpoint"))
            if saved is None or saved.run_id != run_id:
                self.fail(f"the results of retry run {run_id} were not drained whole")
                return None
            retries.append(Staged(run_id, staging_paths(self._first.paths, attempt), saved.lines))
        first = Staged(self._first.run_id, self._first.paths, self._first.lines)
        spool = spool_dir_of(self._state)
        try:
            published, manifest = await asyncio.to_thread(
                fold, self._first.paths, first, retries, self._manifest(), spool_dir=spool
            )
        except (OSError, ResultsError) as e:
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
        # Every staged file goes, a retry run not waited to its end (not folded) included.
        last = max([self._desired.run.retry.attempts, *(int(k) for k in staged if k.isdigit())])
        leftover = [staging_paths(self._first.paths, k) for k in range(1, last + 1)]
        self._finished(delivered, [self._first.paths, *leftover])
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

    def _finished(self, delivered: Delivered, staged: Sequence[Any]) -> None:
        """Journal the final figures (durable), then drop the staged files."""
        from dataclasses import replace

        from sprunner.results.writer import part_path

        done = replace(self._first, finished=True, lines=delivered.lines, bytes=delivered.bytes)
        value = {"checkpoint": done.to_json(), "report": delivered.__dict__, "held": False}
        self._state.put_blob(self._desired.name, BLOB_KIND, value, durable=True)
        self._state.put_blob(self._desired.name, STAGED_KIND, None)
        spool = spool_dir_of(self._state)
        for paths in staged:
            with contextlib.suppress(OSError):
                part_path(paths, spool_dir=spool).unlink()

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
        return None

    def close(self) -> None:
        if self.drain is not None:
            self.drain.close()
            self.drain = None


class CommandResults:
    """`sprunner retry`: each companion run's rows as a run of their own (module docstring)."""

    def __init__(
        self,
        client: ApiClient,
        state: StateStore,
        desired: DesiredCollection,
        attempts_of: Mapping[tuple[str, str | None], int],
        *,
        warn: Callable[[str], None],
    ) -> None:
        self._client, self._state, self._desired = client, state, desired
        self._attempts_of, self._warn = attempts_of, warn

    async def begin(self, attempt: int, run: Run, started_at: float) -> Hook | None:
        if self._desired.results is None:
            return None
        delivery = Delivery(
            self._client,
            self._state,
            self._desired,
            run,
            started_at=started_at,
            warn=self._warn,
            journal=self._desired.name + ".retry",
            attempts_of=self._attempts_of,
        )
        await delivery.open()
        return _Published(delivery)


class _Published:
    def __init__(self, delivery: Delivery) -> None:
        self._delivery = delivery

    @property
    def error(self) -> str | None:
        return self._delivery.error

    async def on_poll(self, run: Run) -> None:
        await self._delivery.on_poll(run)

    async def done(self, run: Run) -> Mapping[str, Any] | None:
        delivered = await self._delivery.finish(run)
        return None if delivered is None else delivered.report()

    def close(self) -> None:
        self._delivery.close()
