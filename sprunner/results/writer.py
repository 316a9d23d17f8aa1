"""A streamed, resumable result file that appears under its final name only when complete.

Bytes go to a `.part` file: beside the final file for local destinations (renamed at the
end), or in a local spool for object stores (uploaded once at the end: one commit, never
a partial object). Rows are streamed (no block is held in memory); with gzip they go
through one gzip member at a time, ended every `FLUSH_BYTES` of input and at every
commit (a concatenation of members is a valid gzip file), so every commit point is a
safe place to cut.

`commit()` flushes, fsyncs and returns a `WriterPosition` (lines, bytes) that the caller
journals. After a kill, `ResultWriter(..., resume=position)` cuts the `.part` back to that
length and appends from there: lines written after the last journaled commit are dropped
and re-read by the drain, so nothing is doubled and nothing lost.

Parquet is staged as gzip JSON lines (a footer-at-the-end format cannot be resumed by
cutting) and converted at `publish()` row group by row group (`parquet.py`).

The manifest is written only after the data file is complete and in place.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sprunner.results.errors import ResultsError, ResumeImpossibleError
from sprunner.results.layout import ResultPaths
from sprunner.results.storage import Destination, require_pyarrow, resolve

FLUSH_BYTES = 4 << 20
# Level 1 keeps compression well above the drain's network rate (bench_results_write.py)
# for a file about a quarter larger than level 6 on HTML.
GZIP_LEVEL = 1
_HASH_CHUNK = 1 << 20


def _optional(module: str) -> Any:
    """orjson and ISA-L's zlib when installed (dependencies, but never required to work).

    Together they make encoding and compressing about 4x cheaper in CPU than json and
    zlib (bench_results_write.py): the difference between keeping up with a fast drain
    and not. Both write the same formats, so a file never depends on which was used.
    """
    try:
        return importlib.import_module(module)
    except ImportError:  # a platform without a wheel: the standard library does the work
        return None


_ORJSON = _optional("orjson")
_ISAL_ZLIB = _optional("isal.isal_zlib")


@dataclass(frozen=True)
class WriterPosition:
    """What is durably in the `.part` file: `lines` rows in its first `bytes` bytes."""

    lines: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class PublishedFile:
    """A complete result file and its manifest, both in place."""

    data: str
    manifest: str
    lines: int
    bytes: int
    sha256: str


def gzip_compressor(level: int = GZIP_LEVEL) -> Any:
    """A compressor whose output, once flushed, is one complete gzip member."""
    # ISA-L has levels 0-3 only; a higher level asks for zlib's smaller, slower output.
    module = _ISAL_ZLIB if _ISAL_ZLIB is not None and level <= 3 else zlib
    return module.compressobj(level, module.DEFLATED, 31)


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One JSON line (UTF-8, compact); values JSON cannot hold are written as text."""
    if _ORJSON is not None:
        options = _ORJSON.OPT_APPEND_NEWLINE | _ORJSON.OPT_NON_STR_KEYS
        try:
            return bytes(_ORJSON.dumps(row, default=str, option=options))
        except TypeError:  # e.g. an integer over 64 bits: the standard library writes it
            pass
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=str).encode() + b"\n"


def spool_path(spool_dir: Path | None, paths: ResultPaths, stage: str = "") -> Path:
    """Where an object-store file is staged: stable per destination, so a resume finds it."""
    base = spool_dir or Path(tempfile.gettempdir()) / "sprunner-spool"
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
    dest = resolve(paths.data, storage_options)
    return Path(dest.path + stage + ".part") if dest.local else spool_path(spool_dir, paths, stage)


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
        try:
            self._handle = self._open_part(resume)
        except OSError as e:
            raise ResultsError(f"cannot write results to {self.part}: {e}") from e
        self._lines = resume.lines if resume else 0
        self._position = resume or WriterPosition()
        self._member: Any = None  # the open gzip member's compressor, if any
        self._in_member = 0

    def _open_part(self, resume: WriterPosition | None) -> IO[bytes]:
        self.part.parent.mkdir(parents=True, exist_ok=True)
        if resume is None or (resume.bytes == 0 and not self.part.exists()):
            return open(self.part, "wb")
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
        try:
            return self._write(encode_row(row))
        except OSError as e:  # a full disk fails the collection, with a message
            raise ResultsError(f"cannot write results to {self.part}: {e}") from e

    def _write(self, line: bytes) -> int:
        self._lines += 1
        if not self._gzip:
            self._handle.write(line)
            return len(line)
        # Streamed into the member's compressor: no copy of the block is ever held.
        if self._member is None:
            self._member = gzip_compressor(self._level)
        self._handle.write(self._member.compress(line))
        self._in_member += len(line)
        if self._in_member >= self._flush_bytes:
            self._flush()
        return len(line)

    def _flush(self) -> None:
        """End the open gzip member, so that the file ends on a member boundary."""
        if self._member is not None:
            self._handle.write(self._member.flush())
            self._member = None
            self._in_member = 0

    def commit(self) -> WriterPosition:
        """Make every row written so far durable; the returned position may be journaled."""
        try:
            self._flush()
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as e:
            raise ResultsError(f"cannot write results to {self.part}: {e}") from e
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
        with contextlib.suppress(FileNotFoundError):
            self.part.unlink()

    def publish(self, manifest: Mapping[str, Any]) -> PublishedFile:
        """Complete the file, put it under its final name, then write the manifest."""
        position = self.commit()
        self._handle.close()
        built = self._build_final()
        size, digest = _size_and_sha256(built)
        document = {
            **manifest,
            "file": self.paths.data.rsplit("/", 1)[-1],
            "format": self.paths.format,
            "lines": position.lines,
            "bytes": size,
            "sha256": digest,
        }
        try:
            self._place(built)
            self._write_manifest(document)
        except OSError as e:
            raise ResultsError(f"cannot write results to {self.paths.data}: {e}") from e
        for leftover in (self.part, built):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        return PublishedFile(self.paths.data, self.paths.manifest, position.lines, size, digest)

    def _build_final(self) -> Path:
        """The complete local file to put in place: the part itself, or parquet built from it."""
        if self.paths.format != "parquet":
            return self.part
        from sprunner.results.parquet import convert

        target = self.part.with_name(self.part.name[: -len(".part")] + ".build")
        convert(self.part, target)
        return target

    def _place(self, built: Path) -> None:
        fs, final = self._dest.fs, self._dest.path
        if self._dest.local:
            os.replace(built, final)
            _fsync_directory(Path(final).parent)
            return
        fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(built), final)

    def _write_manifest(self, document: Mapping[str, Any]) -> None:
        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        target = resolve(self.paths.manifest, self._storage_options)
        if target.local:
            from sprunner.atomic import write_atomically

            write_atomically(Path(target.path), text)
        else:
            target.fs.pipe_file(target.path, text.encode())


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (a power cut must not bring the `.part` back)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
