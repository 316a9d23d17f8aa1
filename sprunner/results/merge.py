"""One results file from a run and its retry runs (SPEC §8 meets §7): one line per request.

A run whose failed jobs are retried is drained as usual, but its file is held back
(`Drain.settle`: committed rows in its `.part`, nothing published); each retry run is
drained into a `.part` of its own. `fold` then writes the final file once:

- the rows of each run in turn (the first run, then each retry in order), leaving out a
  failed or timed-out row when the next run retried its request (`(url, custom_id)`): as
  many rows of a request are left out as the next run has rows of it, so requests that
  share a key are counted, not merged;
- so each request has exactly one line: the first run's for what succeeded at once (or
  was never retried), else the row of the run that settled it, whose `attempts` says how
  many runs it took; a still-failing request keeps its last failure;
- the manifest counts the final statuses, `expired` and `missing` over the final rows, and
  lists the retry runs;
- every row carries the first run's `run_id` and `run_started_at`: the file is that run's
  final outcome (a row's `job_id` is the job that settled it, `attempts` how many runs).

Invariants: the staged files are only read, so a fold interrupted by a kill is simply
done again; the final file is staged under a name of its own (`stage=".final"`) and
appears under its final name whole, or not at all, with its manifest after it; its
publication is recorded (`record`) before anything is renamed (`publication.py`). Memory
holds the keys of the retried requests only, never a row of another run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sprunner.results.layout import ResultPaths
from sprunner.results.publication import Publication, PublishedFile
from sprunner.results.tally import FINISHED_STATUSES
from sprunner.results.writer import ResultWriter, part_path, staged_rows

Key = tuple[Any, Any]
FINAL_STAGE = ".final"


def request_key(row: Mapping[str, Any]) -> Key:
    """How a retry's row is matched to the run before it: the request, not the job."""
    return (row.get("url"), row.get("custom_id"))


@dataclass(frozen=True)
class Staged:
    """The committed rows of one run, in a `.part` that is never published itself."""

    run_id: str
    paths: ResultPaths  # the paths its writer was given (its `.part` derives from them)
    lines: int


def staged_of(
    staged: Staged,
    *,
    spool_dir: Path | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    part = part_path(staged.paths, spool_dir=spool_dir, storage_options=storage_options)
    # Parquet is staged as gzip JSON lines too; only plain jsonl is staged plain.
    yield from staged_rows(part, staged.lines, gzipped=staged.paths.format != "jsonl")


def fold(
    paths: ResultPaths,
    first: Staged,
    retries: Sequence[Staged],
    manifest: Mapping[str, Any],
    *,
    run_started_at: str | None = None,
    spool_dir: Path | None = None,
    storage_options: Mapping[str, Any] | None = None,
    record: Callable[[Publication], None] | None = None,
) -> tuple[PublishedFile, dict[str, Any]]:
    """Write and publish the final file of `first` and its `retries`; (file, manifest).
    `record` journals the publication before anything is renamed."""
    where: dict[str, Any] = {"spool_dir": spool_dir, "storage_options": storage_options}
    runs = [first, *retries]
    # For run i, the requests run i+1 re-ran: how many of their failed rows to leave out.
    retried = [Counter(request_key(r) for r in staged_of(s, **where)) for s in retries]
    writer = ResultWriter(
        paths, spool_dir=spool_dir, storage_options=storage_options, stage=FINAL_STAGE
    )
    counts: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    unavailable: Counter[str] = Counter()
    try:
        for index, staged in enumerate(runs):
            skip = retried[index] if index < len(retried) else Counter()
            for row in staged_of(staged, **where):
                key = request_key(row)
                if row.get("status") != "completed" and skip[key] > 0:
                    skip[key] -= 1
                    continue
                writer.write({**row, "run_id": first.run_id, "run_started_at": run_started_at})
                counts[str(row.get("status"))] += 1
                attempts[str(row.get("attempts", 1))] += 1
                if row.get("result_unavailable"):
                    unavailable[str(row["result_unavailable"])] += 1
        lines = sum(counts.values())
        total = int(manifest.get("total_requests", lines))
        lost = sum(n for code, n in unavailable.items() if code != "result_expired")
        document = {
            **manifest,
            "counts": {s: counts[s] for s in FINISHED_STATUSES},
            "expired": unavailable["result_expired"],
            "missing": lost + max(0, total - lines),
            "attempts": dict(sorted(attempts.items())),
            "retries": [s.run_id for s in retries],
        }
        return writer.publish(document, record=record), document
    finally:
        writer.close()


def staging_paths(first: ResultPaths, attempt: int) -> ResultPaths:
    """Where retry `attempt`'s rows are staged: beside the first run's, never published."""
    stem = first.data[: -len(f".{first.format}")]
    data = f"{stem}.retry{attempt}.jsonl.gz"
    return ResultPaths(first.to, first.directory, data, data + ".unused", "jsonl.gz")
