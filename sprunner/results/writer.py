"""A streamed, resumable result file that appears under its final name only when complete.

Bytes go to a `.part` file: beside the final file for local destinations, under a `_`
name that Hive readers skip (renamed at the end), or in a local spool for object stores
(uploaded once at the end: one commit, never a partial object). Rows are streamed (no
block is held in memory, and a huge body is encoded a piece at a time: `encoding.py`);
with gzip they go through one gzip member at a time, ended every `FLUSH_BYTES` of input
and at every commit (a concatenation of members is a valid gzip file), so every commit
point is a safe place to cut.

`commit()` flushes, fsyncs and returns a `WriterPosition` (lines, bytes) that the caller
journals. After a kill, `ResultWriter(..., resume=position)` cuts the `.part` back to that
length and appends from there: lines written after the last journaled commit are dropped
and re-read by the drain, so nothing is doubled and nothing lost.

Parquet is staged as gzip JSON lines (a footer-at-the-end format cannot be resumed by
cutting) and converted at `build()` row group by row group (`parquet.py`).

`publish()` is `build()`, then the steps of `publication.py`: recorded (the caller's
`record`) before anything is renamed, so a kill at any point is rolled forward.

The spool of object-store files is the state directory's `spool/` when there is one (a
resume finds its file there), else a private directory of this process (`mkdtemp`, 0700):
never a shared, predictable path another local user could create first.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sprunner.results.encoding import encode_row, optional
from sprunner.results.errors import ResultsError, ResumeImpossibleError, io_boundary
from sprunner.results.layout import ResultPaths
from sprunner.results.publication import (
    Publication,
    PublishedFile,
    complete,
    prepare,
    remove,
)
from sprunner.results.storage import Destination, require_pyarrow, resolve
from sprunner.util.killpoints import reached

FLUSH_BYTES = 4 << 20
# Level 1 keeps compression well above the drain's network rate (bench_results_write.py)
# for a file about a quarter larger than level 6 on HTML.
GZIP_LEVEL = 1
_ISAL_ZLIB = optional("isal.isal_zlib")  # ISA-L: about 4x cheaper than zlib at level 1
_private_spool: Path | None = None


@dataclass(frozen=True)
class WriterPosition:
    """What is durably in the `.part` file: `lines` rows in its first `bytes` bytes."""

    lines: int = 0
    bytes: int = 0


def gzip_compressor(level: int = GZIP_LEVEL) -> Any:
    """A compressor whose output, once flushed, is one complete gzip member."""
    # ISA-L has levels 0-3 only; a higher level asks for zlib's smaller, slower output.
    module = _ISAL_ZLIB if _ISAL_ZLIB is not None and level <= 3 else zlib
    return module.compressobj(level, module.DEFLATED, 31)


def private_spool() -> Path:
    """This process's own spool directory (mkdtemp: 0700, a name nobody can take first),
    removed when it exits; made again (never re-created by name) if it went away."""
    global _private_spool
    if _private_spool is None or not _private_spool.is_dir():
        _private_spool = Path(tempfile.mkdtemp(prefix="sprunner-spool-"))
        atexit.register(shutil.rmtree, _private_spool, ignore_errors=True)
    return _private_spool


def spool_path(spool_dir: Path | None, paths: ResultPaths, stage: str = "") -> Path:
    """Where an object-store file is staged: stable per destination, so a resume finds it."""
    base = spool_dir or private_spool()
    key = hashlib.sha256((paths.data + stage).encode()).hexdigest()[:32]
    return base / f"{key}.{paths.format}.part"


def part_path(
    paths: ResultPaths,
    *,
    stage: str = "",
    spool_dir: Path | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Path:
    """The `.part` a writer of `paths` stages its rows in (`stage` tells two apart)."""
    if resolve(paths.data, storage_options).local:
        return Path(resolve(paths.part(stage), storage_options).path)
    return spool_path(spool_dir, paths, stage)


def staged_rows(part: Path, lines: int, *, gzipped: bool = True) -> Iterator[dict[str, Any]]:
    """The first `lines` rows of a `.part` (its committed rows), streamed."""
    if lines <= 0:
        return
    with open(part, "rb") as raw:
        stream: Iterable[bytes] = gzip.GzipFile(fileobj=raw) if gzipped else raw
        for line in stream:
            yield json.loads(line)
            lines -= 1
            if lines <= 0:
                return


class ResultWriter:
    """One run's result file, written in order and committed in blocks."""

    def __init__(
        self,
        paths: ResultPaths,
        *,
        resume: WriterPosition | None = None,
        spool_dir: Path | None = None,
        storage_options: Mapping[str, Any] | None = None,
        gzip_level: int = GZIP_LEVEL,
        flush_bytes: int = FLUSH_BYTES,
        stage: str = "",
    ) -> None:
        """`stage` names a second staging file for the same final file (a results file
        folded from several runs' staged rows is built beside the first run's `.part`)."""
        if paths.format == "parquet":
            require_pyarrow()
        self.paths = paths
        self._dest: Destination = resolve(paths.data, storage_options)
        self._storage_options = dict(storage_options or {})
        self._gzip = paths.format != "jsonl"
        self._level = gzip_level
        self._flush_bytes = flush_bytes
        self.part = part_path(
            paths, stage=stage, spool_dir=spool_dir, storage_options=storage_options
        )
        with io_boundary(f"results to {self.part}"):
            self._handle = self._open_part(resume)
        self._lines = resume.lines if resume else 0
        self._position = resume or WriterPosition()
        self._member: Any = None  # the open gzip member's compressor, if any
        self._in_member = 0

    def _open_part(self, resume: WriterPosition | None) -> IO[bytes]:
        self.part.parent.mkdir(parents=True, exist_ok=True)
        if resume is None or (resume.bytes == 0 and not self.part.exists()):
            handle: IO[bytes] = open(self.part, "wb")  # noqa: SIM115 - closed by close()
            from sprunner.util.atomic import fsync_directory

            # The name must survive a power cut as long as the state relies on the file.
            fsync_directory(self.part.parent)
            return handle
        try:
            size = self.part.stat().st_size
        except FileNotFoundError as e:
            raise ResumeImpossibleError(f"the partial results file {self.part} is gone") from e
        if size < resume.bytes:
            raise ResumeImpossibleError(
                f"the partial results file {self.part} has {size} bytes, {resume.bytes} recorded"
            )
        handle = open(self.part, "r+b")  # noqa: SIM115 - closed by close()/publish()
        handle.truncate(resume.bytes)
        handle.seek(resume.bytes)
        return handle

    @property
    def position(self) -> WriterPosition:
        """The last committed position (what a resume may rely on)."""
        return self._position

    def write(self, row: Mapping[str, Any]) -> int:
        """Append one row; returns its encoded size. Durable only after `commit()`."""
        with io_boundary(f"results to {self.part}"):  # a full disk fails the collection
            self._lines += 1
            return sum(self._write(piece) for piece in encode_row(row))

    def _write(self, piece: bytes) -> int:
        if not self._gzip:
            self._handle.write(piece)
            return len(piece)
        # Streamed into the member's compressor: no copy of the block is ever held.
        if self._member is None:
            self._member = gzip_compressor(self._level)
        self._handle.write(self._member.compress(piece))
        self._in_member += len(piece)
        if self._in_member >= self._flush_bytes:
            self._flush()
        return len(piece)

    def _flush(self) -> None:
        """End the open gzip member, so that the file ends on a member boundary."""
        if self._member is not None:
            self._handle.write(self._member.flush())
            self._member = None
            self._in_member = 0

    def commit(self) -> WriterPosition:
        """Make every row written so far durable; the returned position may be journaled."""
        with io_boundary(f"results to {self.part}"):
            self._flush()
            self._handle.flush()
            os.fsync(self._handle.fileno())
        self._position = WriterPosition(lines=self._lines, bytes=self._handle.tell())
        return self._position

    def committed_rows(self) -> Iterator[dict[str, Any]]:
        """The rows durably in the file (after a resume: those before the kill)."""
        self._handle.flush()
        yield from staged_rows(self.part, self._position.lines, gzipped=self._gzip)

    def close(self) -> None:
        """Close without publishing: the `.part` stays for a resume."""
        with contextlib.suppress(OSError):
            self._handle.close()

    def discard(self) -> None:
        """Close and remove the `.part` (the run's results will not be written)."""
        self.close()
        remove([self.part])

    def build(self, defaults: Mapping[str, Any] | None = None) -> Path:
        """Commit and close; the complete local file to put in place (the `.part` itself,
        or the Parquet file built from it beside it). A `.part` begun by an older sprunner
        (`paths.legacy`) is rewritten in the row schema, `defaults` filling `run_id` and
        `run_started_at` (`rowschema.conformed`)."""
        self.commit()
        self._handle.close()
        target = self.part.with_name(self.part.name[: -len(".part")] + ".build")
        fill = {k: (defaults or {}).get(k) for k in ("run_id", "run_started_at")}
        with io_boundary(f"results to {target}"):
            if self.paths.format == "parquet":
                from sprunner.results.parquet import convert

                convert(self.part, target, **fill)
            elif self.paths.legacy:
                self._rewrite(target, fill)
            else:
                return self.part
        return target

    def _rewrite(self, target: Path, fill: Mapping[str, Any]) -> None:
        from sprunner.results.rowschema import conformed

        compressor = gzip_compressor(self._level) if self._gzip else None
        with open(target, "wb") as out:
            for row in staged_rows(self.part, self._position.lines, gzipped=self._gzip):
                for piece in encode_row(conformed(row, **fill)):
                    out.write(compressor.compress(piece) if compressor else piece)
            out.write(compressor.flush() if compressor else b"")
            out.flush()
            os.fsync(out.fileno())

    def publish(
        self,
        manifest: Mapping[str, Any],
        *,
        record: Callable[[Publication], None] | None = None,
    ) -> PublishedFile:
        """Complete the file, record the publication (`record`: durable in the state before
        anything is renamed), put it under its final name, then write the manifest."""
        built = self.build(manifest)
        publication = prepare(
            built,
            self.paths,
            manifest,
            lines=self.position.lines,
            storage_options=self._storage_options,
        )
        reached("publish.built")
        if record is not None:
            record(publication)
        published = complete(publication, self._storage_options)
        remove([self.part, built])
        return published


__all__ = ["PublishedFile", "ResultWriter", "ResultsError", "WriterPosition"]
