"""The drain's durable progress, and the timestamps it is measured in.

A `DrainCheckpoint` is taken only at a commit of the result file, so its high-water mark
and its file position always describe the same rows: the caller journals it in the state
before relying on it, and `Drain.resume` continues from it after a kill. Everything else
the drain knows (ids written, counts, failed jobs) is rebuilt from the committed rows, so
the checkpoint stays small whatever the size of the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sprunner.results.layout import FORMATS, Format, ResultPaths
from sprunner.results.writer import WriterPosition

CHECKPOINT_VERSION = 1
_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (any fraction length, `Z` or an offset)."""
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 3 or 6 fraction digits.
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def before(text: str, margin: timedelta) -> str:
    """A `since_completed_at` a little before `text`, so jobs tied with it are read again."""
    return format_time(parse_time(text) - margin)


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
    - `finished`: the file and its manifest are published; nothing is left to do.
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

    @property
    def position(self) -> WriterPosition:
        return WriterPosition(lines=self.lines, bytes=self.bytes)

    @property
    def paths(self) -> ResultPaths:
        directory = self.data.rsplit("/", 1)[0]
        return ResultPaths(self.to, directory, self.data, self.manifest, self.format)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            **asdict(self),
            "ids_at_mark": list(self.ids_at_mark),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DrainCheckpoint:
        """Read a journaled checkpoint; ValueError when it is not one this version wrote."""
        if data.get("version") != CHECKPOINT_VERSION or data.get("format") not in FORMATS:
            raise ValueError("not a results checkpoint of this sprunner version")
        try:
            return cls(
                run_id=str(data["run_id"]),
                data=str(data["data"]),
                manifest=str(data["manifest"]),
                format=cast(Format, data["format"]),
                to=str(data["to"]),
                started_at=str(data["started_at"]),
                high_water=None if data.get("high_water") is None else str(data["high_water"]),
                ids_at_mark=tuple(str(i) for i in data.get("ids_at_mark", ())),
                lines=int(data.get("lines", 0)),
                bytes=int(data.get("bytes", 0)),
                seen_finished=int(data.get("seen_finished", 0)),
                finished=bool(data.get("finished", False)),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"incomplete results checkpoint: {e}") from e
