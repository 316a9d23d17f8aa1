"""Where a run's results go: the Hive-style layout of SPEC §7.

    <to>/collection=<name>/date=<YYYY-MM-DD of the run start, UTC>/<run_id>.<format>
    <to>/collection=<name>/date=<...>/_<run_id>.manifest.json

Only data files lie in a partition folder under a plain name: the manifest, and the
`.part` files a drain stages its rows in beside a local file, start with `_`, which Hive
readers (Spark, pyarrow.dataset, pandas, DuckDB's globs of `*.<format>`) skip.

Invariants: the same (to, name, run start, run id, format) always gives the same paths, so
an interrupted drain finds its file again; each segment is path-safe (no separator, no
`.`/`..`, no control characters) and reversible (percent-encoding, which Hive, Spark and
DuckDB decode in partition values). `to` is a local directory or an fsspec URL; it is
joined with `/` either way, which fsspec and every POSIX path accept.

A tree written before the `_` names (`<run_id>.manifest.json`, `<run_id>.<format>.part`)
is read and kept as it is: a drain journaled then resumes its `.part` where it is
(`ResultPaths.legacy`), and a run whose old manifest exists keeps that name
(`manifest_target`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal
from urllib.parse import quote

Format = Literal["jsonl.gz", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl.gz", "jsonl", "parquet")
DEFAULT_FORMAT: Format = "jsonl.gz"
HIDDEN = "_"  # the prefix Hive readers skip


def safe_segment(value: str, *, file: bool = False) -> str:
    """`value` as one path segment: unreserved characters kept, everything else %XX.
    A `file` name never starts with `_` either: Hive readers would skip the data file."""
    text = quote(value, safe="-_.~")
    # A leading dot would hide the file (or climb up, for `..`).
    if text.startswith("."):
        text = "%2E" + text[1:]
    elif file and text.startswith("_"):
        text = "%5F" + text[1:]
    return text or ("%5F" if file else "_")


@dataclass(frozen=True)
class ResultPaths:
    """The paths of one run's results, as strings fsspec understands."""

    to: str
    directory: str
    data: str
    manifest: str
    format: Format
    legacy: bool = False  # journaled before the `_` names: its `.part` is `<data>.part`

    @property
    def name(self) -> str:
        """The data file's name in its folder."""
        return self.data.rsplit("/", 1)[-1]

    def part(self, stage: str = "") -> str:
        """The `.part` a writer stages this file in beside it (`stage` tells two apart)."""
        if self.legacy:
            return f"{self.data}{stage}.part"
        return f"{self.directory}/{HIDDEN}{self.name}{stage}.part"

    @property
    def legacy_manifest(self) -> str:
        """The manifest's name before the `_` names: `<run_id>.manifest.json`."""
        return f"{self.directory}/{self.name[: -len(self.format) - 1]}.manifest.json"


def run_date(started: datetime | float | None) -> str:
    """The UTC date of the run start; a missing start (old runs) counts as today."""
    if started is None:
        moment = datetime.now(timezone.utc)
    elif isinstance(started, datetime):
        moment = started if started.tzinfo else started.replace(tzinfo=timezone.utc)
    else:
        moment = datetime.fromtimestamp(started, timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")


def result_paths(
    to: str, *, collection: str, run_id: str, started: datetime | float | None, format: Format
) -> ResultPaths:
    """The data file and manifest of `run_id` under `to`."""
    if format not in FORMATS:
        raise ValueError(f"unknown results format {format!r}")
    base = to.rstrip("/") or "/"
    directory = "/".join(
        [base.rstrip("/"), f"collection={safe_segment(collection)}", f"date={run_date(started)}"]
    )
    run = safe_segment(run_id, file=True)
    return ResultPaths(
        to=to,
        directory=directory,
        data=f"{directory}/{run}.{format}",
        manifest=f"{directory}/{HIDDEN}{run}.manifest.json",
        format=format,
    )
