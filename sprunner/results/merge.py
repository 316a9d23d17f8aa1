"""Folding retry outcomes into a run's published result file (SPEC §8 meets §7).

The results file of a run judged with retries holds one line per request with its FINAL
status and `attempts`. The first run's file is published as usual; each retry run's rows
(drained with `DrainTarget(attempts=k)`, e.g. into a scratch destination) are then folded
in with `merge_retry`: a row whose request, `(url, custom_id)`, was retried is replaced in
place by the retry's row; the rest stay as they were, in their order.

Invariants: the file is rewritten through `ResultWriter` (a `.part` renamed, or one upload),
so it is replaced whole or not at all; the manifest is rewritten after it, with the counts,
`expired` and `missing` recomputed from the rows and the retry run ids listed. Memory holds
the retry rows only (the failed requests), never the whole file.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sprunner.results.layout import ResultPaths
from sprunner.results.storage import resolve
from sprunner.results.tally import FINISHED_STATUSES
from sprunner.results.writer import PublishedFile, ResultWriter

Key = tuple[Any, Any]


def request_key(row: Mapping[str, Any]) -> Key:
    """How a retry's row is matched to the first run's: the request, not the job."""
    return (row.get("url"), row.get("custom_id"))


def read_published(
    paths: ResultPaths, storage_options: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """The rows of a published result file, streamed (jsonl.gz, jsonl or parquet)."""
    import json

    dest = resolve(paths.data, storage_options)
    with dest.fs.open(dest.path, "rb") as raw:
        if paths.format == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(raw).iter_batches():
                yield from batch.to_pylist()
            return
        stream: Iterable[bytes] = gzip.GzipFile(fileobj=raw) if paths.format == "jsonl.gz" else raw
        for line in stream:
            if line.strip():
                yield json.loads(line)


def read_manifest(
    paths: ResultPaths, storage_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    import json

    dest = resolve(paths.manifest, storage_options)
    with dest.fs.open(dest.path, "rb") as handle:
        manifest: dict[str, Any] = json.loads(handle.read())
    return manifest


def merge_retry(
    paths: ResultPaths,
    retry_rows: Iterable[Mapping[str, Any]],
    *,
    retry_run_id: str,
    storage_options: Mapping[str, Any] | None = None,
    spool_dir: Path | None = None,
) -> PublishedFile:
    """Replace the rows of the retried requests in `paths`' published file, republish it."""
    replacements = {request_key(row): dict(row) for row in retry_rows}
    manifest = read_manifest(paths, storage_options)
    # Read whole before writing: the new file replaces the old one at the same path.
    scratch = ResultWriter(
        _scratch_paths(paths), spool_dir=spool_dir, storage_options=storage_options
    )
    writer = None
    try:
        for row in read_published(paths, storage_options):
            scratch.write(replacements.pop(request_key(row), row))
        for row in replacements.values():  # a retried request the first file lacked
            scratch.write(row)
        scratch.commit()
        writer = ResultWriter(paths, spool_dir=spool_dir, storage_options=storage_options)
        counts: Counter[str] = Counter()
        unavailable: Counter[str] = Counter()
        for row in scratch.committed_rows():
            writer.write(row)
            counts[str(row.get("status"))] += 1
            if row.get("result_unavailable"):
                unavailable[str(row["result_unavailable"])] += 1
    finally:
        scratch.discard()
    lines = sum(counts.values())
    total = int(manifest.get("total_requests", lines))
    lost = sum(n for code, n in unavailable.items() if code != "result_expired")
    manifest.update(
        counts={s: counts[s] for s in FINISHED_STATUSES},
        expired=unavailable["result_expired"],
        missing=lost + max(0, total - lines),
        retries=[*manifest.get("retries", []), retry_run_id],
    )
    return writer.publish(manifest)


def _scratch_paths(paths: ResultPaths) -> ResultPaths:
    """A staging file beside the real one (never published: discarded after the merge)."""
    stem = paths.data[: -len(f".{paths.format}")]
    data = f"{stem}.merging.jsonl.gz"
    return ResultPaths(paths.to, paths.directory, data, data + ".unused", "jsonl.gz")
