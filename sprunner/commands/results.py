"""`sprunner results NAME [PATH...] [--run RUN_ID] [--to DEST] [--format F]`.

Downloads the results of a past run (the newest completed one by default) into the
SPEC §7 layout, without applying anything: no collection is created, changed or run.

- Where: `--to`, else the `results:` block of the collection NAME declared in the job
  files (PATHs, default `jobfiles/`); `--format` overrides the format (default: the
  block's, else jsonl.gz); the block's `fields` are used when it is declared. With `--to`
  and no PATH, the job files are not read at all.
- Which collection: the remote one named NAME (the list call), so that a collection
  applied from another machine, or with a lost state, is found all the same.
- The state's lock is taken like `apply` does (exit 4 when an apply holds it): two drains
  of one run must never write the same partial file. A drain that an apply left
  unfinished for this run (a run it stopped waiting for) is resumed and its journal
  completed, so the next apply does not drain it again.

Exit codes: 0 when every job has its row with its body; 1 when the collection or run is
not found, the run is still in progress, or some results expired or are missing (the
file is written all the same, and says so in its manifest); 2 for usage (no destination,
a missing extra); 3 when the API cannot be used; 4 when the state is locked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sprunner.apply.session import Target, state_of, target
from sprunner.errors import EXIT_FAILED, EXIT_OK, SprunnerError, UsageError
from sprunner.output.ui import Output
from sprunner.settings import GlobalOptions, Selection

if TYPE_CHECKING:
    from sprunner.api.client import ApiClient
    from sprunner.api.models import Run
    from sprunner.results.drain import DrainOutcome
    from sprunner.results.layout import Format
    from sprunner.results.rows import Masks
    from sprunner.state import StateStore


class ResultsNotFoundError(SprunnerError):
    """The collection or the run to download is not there (exit 1)."""


@dataclass(frozen=True)
class ResultsOptions:
    name: str
    run_id: str | None = None
    to: str | None = None
    format: str | None = None
    as_json: bool = False


@dataclass(frozen=True)
class Destination:
    to: str
    format: Format
    fields: tuple[str, ...] | None
    masks: Masks | None = None  # the declared collection, when the job files were loaded


def run(
    selection: Selection | None,
    *,
    options: GlobalOptions,
    output: Output,
    results_options: ResultsOptions,
) -> int:
    """`selection` is None when no PATH was given (then `--to` alone may do)."""
    destination = _destination(selection, results_options, output)
    from sprunner.results.errors import MissingExtraError, ResultsError
    from sprunner.results.storage import check_destination

    try:
        check_destination(destination.to, destination.format)
    except MissingExtraError:
        raise
    except ResultsError as e:
        raise UsageError(f"--to: {e}") from e
    with (
        target(options, output, local=False) as api,
        state_of(options, api) as state,
    ):
        run_id, outcome = asyncio.run(_download(api, state, destination, results_options, output))
    return _show(run_id, outcome, output, results_options)


def _destination(selection: Selection | None, ro: ResultsOptions, output: Output) -> Destination:
    """Where to write: `--to`/`--format`, else the declared `results:` block."""
    from sprunner.jobfile.model import DEFAULT_RESULT_FIELDS
    from sprunner.results.layout import DEFAULT_FORMAT

    spec = declared = None
    if ro.to is None or selection is not None:
        from sprunner.commands.common import load_jobs
        from sprunner.settings import DEFAULT_JOBFILES

        loaded = load_jobs(selection or Selection(paths=(DEFAULT_JOBFILES,)), output)
        declared = next((c for c in loaded.collections if c.name == ro.name), None)
        if declared is None and ro.to is None:
            raise UsageError(f"{ro.name}: not declared in the job files; give --to DEST")
        spec = declared.results if declared is not None else None
        if spec is None and ro.to is None:
            raise UsageError(f"{ro.name}: the job files declare no results: block; give --to")
    to = ro.to if ro.to is not None else cast(Any, spec).to
    fmt = ro.format or (spec.format if spec is not None else DEFAULT_FORMAT)
    fields = None
    if spec is not None and spec.fields != DEFAULT_RESULT_FIELDS:
        fields = spec.fields
    if "://" not in to:
        to = str(Path(to).expanduser().absolute())
    return Destination(to=to, format=cast("Format", fmt), fields=fields, masks=declared)


async def _download(
    api: Target, state: StateStore, dest: Destination, ro: ResultsOptions, output: Output
) -> tuple[str, DrainOutcome]:
    from sprunner.api.client import ApiClient

    async with ApiClient(base_url=api.api_url, api_key=api.api_key) as client:
        collection_id = await _collection_id(client, ro.name)
        run = await _run(client, collection_id, ro)
        return run.run_id, await _drain(client, state, run, dest, ro.name, output)


async def _collection_id(client: ApiClient, name: str) -> str:
    found = [c for c in await client.list_collections(name=name) if c.name == name]
    if not found:
        raise ResultsNotFoundError(f"{name}: no such collection remotely")
    if len(found) > 1:
        ids = ", ".join(c.id for c in found)
        raise ResultsNotFoundError(f"{name}: present {len(found)} times remotely ({ids})")
    return found[0].id


async def _run(client: ApiClient, collection_id: str, ro: ResultsOptions) -> Run:
    from sprunner.api.errors import NotFoundError

    if ro.run_id is not None:
        try:
            run = await client.get_run(collection_id, ro.run_id, name=ro.name)
        except NotFoundError as e:
            raise ResultsNotFoundError(f"{ro.name}: no run {ro.run_id}") from e
    else:
        runs = await client.list_runs(collection_id, status="completed", name=ro.name)
        if not runs:
            raise ResultsNotFoundError(f"{ro.name}: no completed run")
        run = runs[0]  # newest first
    if not run.done:
        raise ResultsNotFoundError(
            f"{ro.name}: run {run.run_id} is still in progress; `sprunner apply` drains it "
            "while it runs, or try again once it has completed"
        )
    return run


async def _drain(
    client: ApiClient, state: StateStore, run: Run, dest: Destination, name: str, output: Output
) -> DrainOutcome:
    from sprunner.results.delivered import spool_dir_of, sweep
    from sprunner.results.drain import Drain, DrainTarget
    from sprunner.results.journal import CurrentSlot, Entry
    from sprunner.results.layout import result_paths
    from sprunner.results.times import format_time, utc_text

    paths = result_paths(
        dest.to, collection=name, run_id=run.run_id, started=run.created_at, format=dest.format
    )
    slot = CurrentSlot(state, name)
    checkpoint = _unfinished(slot.load(), run.run_id, paths.data)

    def journal(point: Any) -> None:
        if checkpoint is not None:  # completing an apply's drain: its journal goes on
            slot.save(Entry(point))

    started = utc_text(run.created_at) or format_time(datetime.now(timezone.utc))
    target_ = DrainTarget(
        name,
        run.collection_id,
        run.run_id,
        paths,
        fields=dest.fields,
        masks=dest.masks,
        run_started_at=started,
    )
    drain = await asyncio.to_thread(
        Drain,
        cast(Any, client),
        target_,
        checkpoint=checkpoint,
        spool_dir=spool_dir_of(state),
        on_commit=journal,
        warn=output.warn,
    )
    try:
        outcome: DrainOutcome = await drain.finish(cast(Any, run))
    finally:
        drain.close()
    if checkpoint is not None:
        report = {k: getattr(outcome, k) for k in ("to", "lines", "bytes", "expired", "missing")}
        slot.save(Entry(drain.checkpoint, report))
    await asyncio.to_thread(sweep, drain.checkpoint, spool_dir_of(state))
    return outcome


def _unfinished(entry: Any, run_id: str, data: str) -> Any:
    """The journaled checkpoint of an apply's unfinished drain of this very file, if any
    (a recorded publication of it is drained again: the file is the same or newer)."""
    if entry is None:
        return None
    checkpoint = entry.checkpoint
    if checkpoint.run_id != run_id or checkpoint.finished or checkpoint.data != data:
        return None
    if entry.held:
        # Drained whole, its failed jobs being retried: the apply publishes the one file
        # (one line per request, SPEC §8); a file of the first run alone would replace it.
        raise ResultsNotFoundError(
            f"run {run_id}'s results are held while its failed jobs are retried; the "
            "apply that retries them (or the next apply, if it was interrupted) publishes them"
        )
    return checkpoint.restarted() if checkpoint.publication is not None else checkpoint


def _show(run_id: str, outcome: DrainOutcome, output: Output, ro: ResultsOptions) -> int:
    document = {
        "run_id": run_id,
        "file": outcome.file.data,
        "manifest": outcome.file.manifest,
        "lines": outcome.lines,
        "bytes": outcome.bytes,
        "expired": outcome.expired,
        "missing": outcome.missing,
        "counts": dict(outcome.counts),
    }
    if ro.as_json:
        output.document(document)
    else:
        output.out(
            f"{ro.name}: {outcome.lines} lines ({outcome.bytes} bytes) in {outcome.file.data}; "
            f"{outcome.expired} expired, {outcome.missing} missing"
        )
    return EXIT_FAILED if outcome.expired or outcome.missing else EXIT_OK
