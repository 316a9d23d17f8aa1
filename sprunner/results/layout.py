"""Where a run's results go: the Hive-style layout of SPEC §7.

    <to>/collection=<name>/date=<YYYY-MM-DD of the run start, UTC>/<run_id>.<format>
    <to>/collection=<name>/date=<...>/<run_id>.manifest.json

Invariants: the same (to, name, run start, run id, format) always gives the same paths, so
an interrupted drain finds its file again; each segment is path-safe (no separator, no
`.`/`..`, no control characters) and reversible (percent-encoding, which Hive, Spark and
DuckDB decode in partition values). `to` is a local directory or an fsspec URL; it is
joined with `/` either way, which fsspec and every POSIX path accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal
from urllib.parse import quote

Format = Literal["jsonl.gz", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl.gz", "jsonl", "parquet")
DEFAULT_FORMAT: Format = "jsonl.gz"


def safe_segment(value: str) -> str:
    """`value` as one path segment: unreserved characters kept, everything else %XX."""
    text = quote(value, safe="-_.~")
    # A leading dot would hide the file (or climb up, for `..`).
    if text.startswith("."):
        text = "%2E" + text[1:]
    return text or "_"


@dataclass(frozen=True)
class ResultPaths:
    """The two paths of one run's results, as strings fsspec understands."""

    to: str
    directory: str
    data: str
    manifest: str
    format: Format


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
    stem = f"{directory}/{safe_segment(run_id)}"
    return ResultPaths(
        to=to,
        directory=directory,
        data=f"{stem}.{format}",
        manifest=f"{stem}.manifest.json",
        format=format,
    )
