"""One row per job: the job's metadata, then the chosen fields of its scrape body.

The metadata columns are always present, whatever `fields` says (a row must say which
job it is and how it ended); `fields` picks body fields, and naming a metadata column in
it is harmless. The default is every body field but `screenshot` (large, base64, and
rarely what a table is for). `attempts` is reserved for retries (SPEC §8): 1 for a first
run. `result_unavailable` says why a finished job has no body (`result_expired`,
`result_lost`, ...), so a row without a body is never mistaken for an empty page.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from sprunner import redact
from sprunner.results.apitypes import Job

METADATA = (
    "job_id",
    "url",
    "custom_id",
    "status",
    "status_code",
    "message",
    "block_reason",
    "completed_at",
    "attempts",
    "result_unavailable",
)
EXCLUDED_BY_DEFAULT = frozenset({"screenshot"})


def body_fields(body: Mapping[str, Any], fields: Collection[str] | None) -> dict[str, Any]:
    """The body's fields to keep: `fields` when given, else all but the excluded ones."""
    if fields is None:
        return {k: v for k, v in body.items() if k not in EXCLUDED_BY_DEFAULT}
    return {k: body[k] for k in fields if k in body}


def job_row(
    job: Job,
    body: Mapping[str, Any] | None,
    *,
    fields: Collection[str] | None = None,
    attempts: int = 1,
    unavailable: str | None = None,
) -> dict[str, Any]:
    """The row of `job`; a metadata column wins over a body field of the same name."""
    row: dict[str, Any] = {}
    if body is not None:
        row.update(body_fields(body, fields))
    row.update(
        job_id=job.job_id,
        url=job.url,
        custom_id=job.custom_id,
        status=job.status,
        status_code=job.status_code,
        message=job.message,
        block_reason=job.block_reason,
        completed_at=job.completed_at,
        attempts=attempts,
        result_unavailable=unavailable,
    )
    # Metadata first, then body fields: a reader sees who before what.
    return {**{k: row[k] for k in METADATA}, **{k: v for k, v in row.items() if k not in METADATA}}


class Masks(Protocol):
    """How a collection shows its jobs (`DesiredCollection`): as the requests they are."""

    def shown_job(self, url: str, custom_id: str | None) -> tuple[str, str | None] | None: ...

    def mask_value(self, value: str) -> str | None: ...


def mask_row(row: dict[str, Any], masks: Masks | None) -> None:
    """Show a row's `url` and `custom_id` as sprunner's own masked render of the request
    the job is (matched by `jobfile.identify`, whatever the API echoed), so that no env()
    value reaches a results file. Every run of a collection is masked alike, so the rows
    of its retries still match. What is not sprunner's render (an echo matching no
    request, the job's message) goes through the redactor's search (`sprunner.redact`)."""
    url, custom_id = row.get("url"), row.get("custom_id")
    shown = masks.shown_job(url, custom_id) if masks is not None and isinstance(url, str) else None
    if shown is not None:
        row["url"] = shown[0]
        if custom_id is not None:
            row["custom_id"] = shown[1]
    elif masks is not None and isinstance(custom_id, str):
        row["custom_id"] = masks.mask_value(custom_id) or custom_id
    redactor = redact.current()
    for column in ("url", "custom_id", "message", "block_reason"):
        if isinstance(row.get(column), str):
            row[column] = redactor.redact(row[column])
