"""The masks of a results row: no env() value reaches a results file (SPEC §10).

The row itself is built by `rowschema.job_row` (the declared schema); this module shows
its secret-bearing `url` and `custom_id` as their masked renders.
"""

from __future__ import annotations

from typing import Any, Protocol

from sprunner.util import redact


class Masks(Protocol):
    """How a collection shows its jobs (`DesiredCollection`): as the requests they are."""

    def shown_job(self, url: str, custom_id: str | None) -> tuple[str, str | None] | None: ...

    def mask_value(self, value: str) -> str | None: ...


def mask_row(row: dict[str, Any], masks: Masks | None) -> None:
    """Show a row's `url` and `custom_id` as sprunner's own masked render of the request
    the job is (matched by `jobfile.identify`, whatever the API echoed), so that no env()
    value reaches a results file. Every run of a collection is masked alike, so the rows
    of its retries still match. What is not sprunner's render (an echo matching no
    request, the job's message) goes through the redactor's search (`sprunner.util.redact`)."""
    url, custom_id = row.get("url"), row.get("custom_id")
    shown = masks.shown_job(url, custom_id) if masks is not None and isinstance(url, str) else None
    if shown is not None:
        row["url"] = shown[0]
        if custom_id is not None:
            row["custom_id"] = shown[1]
    elif masks is not None and isinstance(custom_id, str):
        row["custom_id"] = masks.mask_value(custom_id) or custom_id
    redactor = redact.current()
    # `extra` holds body fields without a column of their own: an echo of the URL may hide there.
    for column in ("url", "custom_id", "message", "block_reason", "extra"):
        if isinstance(row.get(column), str):
            row[column] = redactor.redact(row[column])
