"""The API's paths, and the query of the jobs listing checked before anything is sent.

Each path comes with its route template (ids replaced by `{id}`, `{run_id}`, `{job_id}`):
that is what per-call records and metrics carry, so that they neither grow one series per
collection nor show a name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

from sprunner.api.models import JOB_STATUSES

COLLECTIONS = "/v1/async/collections"
MAX_PAGE = 1000  # the API's own bound on `limit`
MAX_PAGE_WITH_RESULTS = 100  # pages that carry the bodies are capped by the API

OrderBy = Literal["id", "completed_at"]
OrderDir = Literal["asc", "desc"]


def _seg(value: str) -> str:
    return quote(value, safe="")


def collection(collection_id: str) -> str:
    return f"{COLLECTIONS}/{_seg(collection_id)}"


def run(collection_id: str, run_id: str) -> str:
    return f"{collection(collection_id)}/runs/{_seg(run_id)}"


def jobs(collection_id: str, run_id: str) -> str:
    return f"{run(collection_id, run_id)}/jobs"


def result(collection_id: str, run_id: str, job_id: str) -> str:
    return f"{jobs(collection_id, run_id)}/{_seg(job_id)}/result"


def jobs_query(
    *,
    cursor: str | None,
    limit: int | None,
    status_filter: Sequence[str],
    order_by: OrderBy | None,
    order_dir: OrderDir | None,
    since_completed_at: str | None,
    include_results: bool,
) -> tuple[dict[str, str], int]:
    """The query string, and the most items a page may then hold. Raises ValueError."""
    if isinstance(status_filter, str):
        # "completed,failed" passed as one string would be split into letters below.
        status_filter = [s for s in status_filter.split(",") if s]
    unknown = [s for s in status_filter if s not in JOB_STATUSES]
    if unknown:
        raise ValueError(f"unknown job status {unknown[0]!r}: use one of {', '.join(JOB_STATUSES)}")
    if order_by not in (None, "id", "completed_at"):
        raise ValueError(f"order_by must be 'id' or 'completed_at', got {order_by!r}")
    if order_dir not in (None, "asc", "desc"):
        raise ValueError(f"order_dir must be 'asc' or 'desc', got {order_dir!r}")
    if limit is not None and (isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE):
        raise ValueError(f"limit must be 1..{MAX_PAGE}, got {limit!r}")
    page = limit if limit is not None else MAX_PAGE
    if include_results:
        # Sent explicitly so that the page size does not depend on the server's own cap.
        page = min(page, MAX_PAGE_WITH_RESULTS)
    params: dict[str, str] = {}
    if cursor is not None:
        params["cursor"] = cursor
    if limit is not None or include_results:
        params["limit"] = str(page)
    if status_filter:
        params["status_filter"] = ",".join(dict.fromkeys(status_filter))
    if order_by is not None:
        params["order_by"] = order_by
    if order_dir is not None:
        params["order_dir"] = order_dir
    if since_completed_at is not None:
        params["since_completed_at"] = since_completed_at
    if include_results:
        params["include_results"] = "true"
    return params, page


def collection_body(name: str, requests: Sequence[Mapping[str, Any]]) -> bytes:
    """The create / PUT body, serialised once: every retry sends the same bytes.

    The request tuple is serialised in place (no list copy) and compactly; for a
    50,000-request collection this is the one copy of the body that exists besides the
    requests themselves.
    """
    items = requests if isinstance(requests, (list, tuple)) else list(requests)
    text = json.dumps({"name": name, "requests": items}, separators=(",", ":"), ensure_ascii=False)
    return text.encode()
