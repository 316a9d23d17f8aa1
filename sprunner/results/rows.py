"""The masks of a results row: no env() value reaches a results file (SPEC §10).

The row itself is built by `rowschema.job_row` (the declared schema); this module shows
its secret-bearing `url` and `custom_id` as their masked renders.
"""

from __future__ import annotations

from typing import Any, Protocol


class Masks(Protocol):
    """How a collection shows its rendered values made with `env()` (`DesiredCollection`)."""

    def mask_url(self, url: str) -> str | None: ...

    def mask_value(self, value: str) -> str | None: ...


def mask_row(row: dict[str, Any], masks: Masks | None) -> None:
    """Show the secret-bearing `url` and `custom_id` of a row as their masked renders, so
    that no env() value reaches a results file. Every run of a collection is masked alike,
    so the rows of its retries still match. Other values are left as they are."""
    if masks is None:
        return
    url, custom_id = row.get("url"), row.get("custom_id")
    if isinstance(url, str):
        row["url"] = masks.mask_url(url) or url
    if isinstance(custom_id, str):
        row["custom_id"] = masks.mask_value(custom_id) or custom_id
