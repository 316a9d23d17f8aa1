"""The one declared schema of a results row, for every file of every run and format (SPEC §7).

Every row has every column, in this order, whatever one run's values happen to be: a value
that is absent is null, never a missing column; each column has one type. So a tree of
files reads as one table in DuckDB, pyarrow, pandas and Polars, whichever file a reader
looks at first. The API's fields are mapped to these columns once, here: the job's
`status_code` (the body's `statusCode` when the job lacks it), `execution_time_ms` (the
body's `executionTime`, in seconds, when the job lacks it); body fields without a column of
their own go to `extra`, as JSON text, so nothing the API sends is dropped.

`fields` (a collection's `results.fields`) chooses which optional columns get values; the
others are null, so that collections with different `fields` still share one schema. The
columns of `ALWAYS` are filled whatever `fields` says: a row must say which run and job it
is and how it ended.

Published as `schemas/results-row.schema.json` (a JSON Schema of a row, generated from
`COLUMNS`: `json_schema()`) and in the README; Parquet files are written with
`arrow_schema()`; JSON lines hold the same names, with timestamps as UTC ISO text.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sprunner.jobfile.model import RESULT_BODY_FIELDS, RESULT_FIELDS
from sprunner.results.encoding import dumps
from sprunner.results.times import utc_text

Kind = Literal["string", "timestamp", "int", "float", "json"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    description: str


COLUMNS = (
    Column("run_id", "string", "The run this file reports on (after retries: the first run)."),
    Column("run_started_at", "timestamp", "When that run started: orders runs across files."),
    Column("job_id", "string", "The job whose outcome the row is (after retries: the last)."),
    Column("url", "string", "The request's URL (env() values masked)."),
    Column("custom_id", "string", "The request's custom_id (env() values masked)."),
    Column("status", "string", "completed, failed or timeout: the final status."),
    Column("status_code", "int", "The HTTP status the target answered."),
    Column("message", "string", "The API's message for the job."),
    Column("block_reason", "string", "Why the target blocked the request, when it did."),
    Column("completed_at", "timestamp", "When the job finished."),
    Column("attempts", "int", "Runs the request took, retries included (1: the first run)."),
    Column(
        "result_unavailable",
        "string",
        "Why a finished job has no body: result_expired, result_lost, ...; null otherwise.",
    ),
    Column("queued_at", "timestamp", "When the job was queued."),
    Column("started_at", "timestamp", "When the job started."),
    Column("execution_time_ms", "float", "How long the scrape took, in milliseconds."),
    Column("retries_attempted", "int", "Retries the API made within the job."),
    Column("html", "string", "The page's HTML."),
    Column("markdown", "string", "The page as markdown."),
    Column("extracted_data", "json", "What `extract` found, as JSON text."),
    Column("screenshot", "string", "The screenshot, base64 (only when `fields` names it)."),
    Column("extra", "json", "Other fields of the scrape body, as a JSON object in text."),
)
NAMES = tuple(c.name for c in COLUMNS)
ALWAYS = frozenset(NAMES[: NAMES.index("result_unavailable") + 1])
OPTIONAL = tuple(n for n in NAMES if n not in ALWAYS)
EXCLUDED_BY_DEFAULT = frozenset({"screenshot"})
# `results.fields` (the job file's names, jobfile/model.py) chooses among these columns: the
# columns are its names and the run's own, nothing else.
assert set(NAMES) == set(RESULT_FIELDS) | {"run_id", "run_started_at", "result_unavailable"}
# Body keys that have a column (or are the request's own, taken from sprunner's render).
_MAPPED = frozenset(
    {"url", "custom_id", "html", "markdown", "screenshot", "extracted_data", "message"}
    | {"statusCode", "status_code", "executionTime", "execution_time_ms"}
)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and len(value) < 24:
        try:
            value = int(value)
        except ValueError:
            return None
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return value
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    """A string column's value: text as it is, anything else as its JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return dumps(value).decode("utf-8")


def _json(value: Any) -> str | None:
    return None if value is None else dumps(value).decode("utf-8")


def conform(kind: Kind, value: Any) -> Any:
    """`value` in the shape a column of `kind` holds in JSON lines (None when absent)."""
    if kind == "timestamp":
        return utc_text(value)
    if kind == "int":
        return _int(value)
    if kind == "float":
        return _float(value)
    if kind == "json":
        return _json(value)
    return _text(value)


def filled(fields: Collection[str] | None) -> frozenset[str]:
    """The columns that get values: `ALWAYS`, and the optional ones `fields` names (all
    but `EXCLUDED_BY_DEFAULT` when `fields` is None)."""
    if fields is None:
        return frozenset(n for n in NAMES if n not in EXCLUDED_BY_DEFAULT)
    return ALWAYS | frozenset(fields)


def job_row(
    job: Any,
    body: Mapping[str, Any] | None,
    *,
    run_id: str,
    run_started_at: str | None,
    fields: Collection[str] | None = None,
    attempts: int = 1,
    unavailable: str | None = None,
) -> dict[str, Any]:
    """The row of `job` (an `apitypes.Job`) and its scrape `body`, every column present."""
    body = body or {}
    seconds = _float(body.get("executionTime"))
    values: dict[str, Any] = {
        "run_id": run_id,
        "run_started_at": run_started_at,
        "job_id": job.job_id,
        "url": job.url,
        "custom_id": job.custom_id,
        "status": job.status,
        "status_code": _first(getattr(job, "status_code", None), body.get("statusCode")),
        "message": _first(getattr(job, "message", None), body.get("message")),
        "block_reason": getattr(job, "block_reason", None),
        "completed_at": getattr(job, "completed_at", None),
        "attempts": attempts,
        "result_unavailable": unavailable,
        "queued_at": getattr(job, "queued_at", None),
        "started_at": getattr(job, "started_at", None),
        "execution_time_ms": _first(
            getattr(job, "execution_time_ms", None), None if seconds is None else seconds * 1000
        ),
        "retries_attempted": getattr(job, "retries_attempted", None),
        "html": body.get("html"),
        "markdown": body.get("markdown"),
        "extracted_data": body.get("extracted_data"),
        "screenshot": body.get("screenshot"),
        "extra": {k: v for k, v in body.items() if k not in _MAPPED} or None,
    }
    chosen = filled(fields)
    return {c.name: conform(c.kind, values[c.name]) if c.name in chosen else None for c in COLUMNS}


def _first(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


def conformed(
    row: Mapping[str, Any], *, run_id: str | None = None, run_started_at: str | None = None
) -> dict[str, Any]:
    """Any row as a row of the schema, every column in its shape (rows `job_row` made come
    out unchanged). A row staged before this schema (a drain an older sprunner began: the
    body's fields beside the job's) is mapped as `job_row` maps a body; `run_id` and
    `run_started_at` fill what it lacks."""
    if set(row) <= set(NAMES):  # already columns: a JSON column's text is kept as it is
        return {
            c.name: row.get(c.name)
            if c.kind == "json" and isinstance(row.get(c.name), str)
            else conform(c.kind, row.get(c.name))
            for c in COLUMNS
        }
    job = _Metadata({n: row.get(n) for n in ALWAYS | _JOB_OPTIONAL})
    body = {k: v for k, v in row.items() if k not in ALWAYS | _JOB_OPTIONAL}
    return job_row(
        job,
        body,
        run_id=row.get("run_id") or run_id or "",
        run_started_at=row.get("run_started_at") or run_started_at,
        fields=NAMES,
        attempts=_int(row.get("attempts")) or 1,
        unavailable=row.get("result_unavailable"),
    )


# The job metadata `fields` may choose (the columns of neither ALWAYS nor the body).
_JOB_OPTIONAL = frozenset(OPTIONAL) - frozenset(RESULT_BODY_FIELDS)


class _Metadata(dict[str, Any]):
    """A staged row's job metadata, read as `job_row` reads a job's attributes."""

    def __getattr__(self, name: str) -> Any:
        return self.get(name)


_JSON_TYPES: dict[Kind, dict[str, Any]] = {
    "string": {"type": ["string", "null"]},
    "timestamp": {"type": ["string", "null"], "format": "date-time"},
    "int": {"type": ["integer", "null"]},
    "float": {"type": ["number", "null"]},
    "json": {"type": ["string", "null"], "contentMediaType": "application/json"},
}
ARROW_TYPES: dict[Kind, str] = {
    "string": "string",
    "timestamp": "timestamp[us, tz=UTC]",
    "int": "int64",
    "float": "double",
    "json": "string",
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one row (the packaged `schemas/results-row.schema.json`)."""
    properties = {
        c.name: {
            **_JSON_TYPES[c.kind],
            "description": c.description,
            "x-arrow-type": ARROW_TYPES[c.kind],
        }
        for c in COLUMNS
    }
    properties["attempts"]["type"] = "integer"  # never null
    properties["attempts"]["minimum"] = 1
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://github.com/scrapingpros/sprunner/schemas/results-row.schema.json",
        "title": "sprunner results row",
        "description": (
            "One line of a results file (JSON lines) or one row of a Parquet results file. "
            "Every row has every column; an absent value is null. Timestamps are UTC "
            "(ISO-8601 text ending in Z in JSON lines). A lone UTF-16 surrogate in a "
            "string is written as the text \\udXXX. The hive partition columns "
            "`collection` and `date` come from the folder names."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": list(NAMES),
        "properties": properties,
    }


def arrow_schema() -> Any:
    """The pyarrow schema every Parquet results file is written with."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "int": pa.int64(),
        "float": pa.float64(),
        "json": pa.string(),
    }
    return pa.schema([pa.field(c.name, types[c.kind]) for c in COLUMNS])
