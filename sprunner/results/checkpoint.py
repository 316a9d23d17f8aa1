"""The drain's durable progress, as journaled in the state.

A `DrainCheckpoint` is taken only at a commit of the result file, so its high-water mark
and its file position always describe the same rows: the caller journals it in the state
before relying on it, and `Drain.resume` continues from it after a kill. Everything else
the drain knows (ids written, counts, failed jobs) is rebuilt from the committed rows, so
the checkpoint stays small whatever the size of the run.

Version 2 adds what a later apply needs to finish a drain on its own (the collection id,
the run start the rows carry) and the publication step (`publication.Publication`),
recorded before anything is renamed. Version 1 checkpoints (written before the `_` file
names) are read too: their `.part` is where that version put it (`ResultPaths.legacy`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any, cast

from sprunner import __version__
from sprunner.results.layout import FORMATS, HIDDEN, Format, ResultPaths
from sprunner.results.publication import Publication
from sprunner.results.times import before, format_time, parse_time
from sprunner.results.writer import WriterPosition

__all__ = ["DrainCheckpoint", "before", "format_time", "parse_time"]

CHECKPOINT_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class DrainCheckpoint:
    """Progress of one run's drain, as journaled in the state.

    - `high_water`: the newest `completed_at` written (as the API wrote it), or None.
    - `ids_at_mark`: ids of the jobs written whose `completed_at` equals `high_water`
      (ties in one millisecond: re-read, never written twice).
    - `lines`, `bytes`: the committed length of the partial file (`WriterPosition`).
    - `seen_finished`: finished jobs (success + failed + timeout) the run showed at the last
      listing; a poll showing no more makes no jobs call.
    - `data`, `manifest`, `format`, `to`: where the file goes (fixed at the start: a run
      without a start time would otherwise change date at midnight).
    - `started_at`: when the drain began (the manifest's `started_at`).
    - `collection_id`: where the run's jobs are listed (a later apply finishes the drain).
    - `run_started_at`: the run start every row carries (fixed at the start, like `data`).
    - `publication`: the file is built and about to be put in place (journaled before).
    - `finished`: the file and its manifest are published; nothing is left to do.
    - `legacy`: read from a version 1 checkpoint (its `.part` is `<data>.part`).
    """

    run_id: str
    data: str
    manifest: str
    format: Format
    to: str
    started_at: str
    high_water: str | None = None
    ids_at_mark: tuple[str, ...] = ()
    lines: int = 0
    bytes: int = 0
    seen_finished: int = 0
    finished: bool = False
    collection_id: str | None = None
    run_started_at: str | None = None
    publication: Publication | None = None
    legacy: bool = False

    @classmethod
    def fresh(
        cls, run_id: str, paths: ResultPaths, *, collection_id: str, run_started_at: str
    ) -> DrainCheckpoint:
        """The checkpoint of a drain about to begin (journaled before its first file)."""
        return cls(
            run_id=run_id,
            data=paths.data,
            manifest=paths.manifest,
            format=paths.format,
            to=paths.to,
            started_at=format_time(datetime.now(timezone.utc)),
            collection_id=collection_id,
            run_started_at=run_started_at,
        )

    def restarted(self) -> DrainCheckpoint:
        """The same drain begun again from the first job (its file or record was lost)."""
        return replace(
            self,
            high_water=None,
            ids_at_mark=(),
            lines=0,
            bytes=0,
            seen_finished=0,
            publication=None,
            legacy=False,
            started_at=format_time(datetime.now(timezone.utc)),
        )

    def advanced(
        self, written: Iterable[tuple[str, str]], position: WriterPosition
    ) -> DrainCheckpoint:
        """After a commit at `position`: the mark moved over the (job id, completed_at)
        written (ties with the mark are remembered by id)."""
        mark, ids = self.high_water, set(self.ids_at_mark)
        for job_id, completed_at in written:
            if mark is None or parse_time(completed_at) > parse_time(mark):
                mark, ids = completed_at, {job_id}
            elif parse_time(completed_at) == parse_time(mark):
                ids.add(job_id)
        return replace(
            self,
            high_water=mark,
            ids_at_mark=tuple(sorted(ids)),
            lines=position.lines,
            bytes=position.bytes,
        )

    def manifest_document(self, collection: str, total: int) -> dict[str, Any]:
        """What every manifest says of its run (the counts are the caller's)."""
        return {
            "version": 1,
            "run_id": self.run_id,
            "collection": collection,
            "collection_id": self.collection_id,
            "run_started_at": self.run_started_at,
            "total_requests": total,
            "started_at": self.started_at,
            "finished_at": format_time(datetime.now(timezone.utc)),
            "sprunner_version": __version__,
        }

    @property
    def position(self) -> WriterPosition:
        return WriterPosition(lines=self.lines, bytes=self.bytes)

    @property
    def paths(self) -> ResultPaths:
        directory, name = self.data.rsplit("/", 1)
        manifest = self.manifest
        if self.legacy:  # what this sprunner writes goes under `_` names, its manifest too
            manifest = f"{directory}/{HIDDEN}{name[: -len(self.format) - 1]}.manifest.json"
        return ResultPaths(self.to, directory, self.data, manifest, self.format, self.legacy)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "version": CHECKPOINT_VERSION,
            "ids_at_mark": list(self.ids_at_mark),
            "publication": None if self.publication is None else self.publication.to_json(),
        }

    @classmethod
    def read(cls, value: Any) -> DrainCheckpoint | None:
        """A checkpoint as the state keeps it, or None when it is none this version reads
        (not a mapping, another version or format): what the journal and the retries use."""
        if not isinstance(value, Mapping):
            return None
        try:
            return cls.from_json(value)
        except ValueError:
            return None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DrainCheckpoint:
        """Read a journaled checkpoint; ValueError when it is not one this version reads."""
        version = data.get("version")
        if version not in READABLE_VERSIONS or data.get("format") not in FORMATS:
            raise ValueError("not a results checkpoint of this sprunner version")
        try:
            return cls(
                run_id=str(data["run_id"]),
                data=str(data["data"]),
                manifest=str(data["manifest"]),
                format=cast(Format, data["format"]),
                to=str(data["to"]),
                started_at=str(data["started_at"]),
                high_water=_text(data.get("high_water")),
                ids_at_mark=tuple(str(i) for i in data.get("ids_at_mark", ())),
                lines=int(data.get("lines", 0)),
                bytes=int(data.get("bytes", 0)),
                seen_finished=int(data.get("seen_finished", 0)),
                finished=bool(data.get("finished", False)),
                collection_id=_text(data.get("collection_id")),
                run_started_at=_text(data.get("run_started_at")),
                publication=Publication.from_json(data.get("publication")),
                legacy=version == 1 or bool(data.get("legacy", False)),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"incomplete results checkpoint: {e}") from e


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
