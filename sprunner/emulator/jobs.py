"""The jobs listing of a run: `GET .../runs/{run_id}/jobs` (SPEC §1), with its query.

- Paging is by keyset: `cursor_next` encodes the sort key of the page's last job, so a page
  never repeats or skips a job that was already listed, even while jobs keep finishing.
  A cursor is tied to its `order_by`/`order_dir`; reusing it with others is a 422.
- `order_by=completed_at` sorts by `completed_at` then by job id; jobs still processing
  come after every finished job (asc) or before them (desc).
- `since_completed_at` keeps jobs that finished strictly after it (to the microsecond).
- `include_results=true` caps a page at `RESULTS_PAGE_CAP` jobs and inlines results.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sprunner.emulator.model import JOB_STATUSES, EngineError, Job, StoredRun
from sprunner.emulator.results import Results, iso_ms

MAX_LIMIT = 1000
RESULTS_PAGE_CAP = 100
_NEVER = 2**62  # the sort key of a job that has not finished
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class JobQuery:
    limit: int = MAX_LIMIT
    statuses: frozenset[str] | None = None
    order_by: str = "id"
    order_dir: str = "asc"
    since_us: int | None = None  # microseconds since the epoch
    include_results: bool = False
    after: tuple[int, int] | None = None  # the cursor: the last listed job's sort key


def _bad(message: str) -> EngineError:
    return EngineError(422, message)


def _limit(text: str | None) -> int:
    if text is None:
        return MAX_LIMIT
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise _bad(f"limit must be an integer from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def _statuses(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    wanted = [part.strip() for part in text.split(",")]
    unknown = [part for part in wanted if part not in JOB_STATUSES]
    if unknown or not wanted:
        raise _bad(f"status_filter must be one or more of {', '.join(JOB_STATUSES)}")
    return frozenset(wanted)


def _since(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"since_completed_at must be an ISO-8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    delta = moment - _EPOCH  # exact integer arithmetic: no float rounding at the boundary
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = params.get(name, allowed[0])
    if value not in allowed:
        raise _bad(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _encode_cursor(order_by: str, order_dir: str, key: tuple[int, int]) -> str:
    raw = json.dumps([order_by, order_dir, *key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str, order_by: str, order_dir: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        by, direction, first, second = json.loads(raw)
        key = (int(first), int(second))
    except (ValueError, TypeError, binascii.Error):
        raise _bad("cursor is not one this API gave") from None
    if (by, direction) != (order_by, order_dir):
        raise _bad("cursor was made for another order_by/order_dir")
    return key


def parse_query(params: Mapping[str, str]) -> JobQuery:
    order_by = _choice(params, "order_by", ("id", "completed_at"))
    order_dir = _choice(params, "order_dir", ("asc", "desc"))
    include = params.get("include_results", "false").lower()
    if include not in ("true", "false", "1", "0"):
        raise _bad(f"include_results must be true or false, got {include!r}")
    cursor = params.get("cursor")
    return JobQuery(
        limit=_limit(params.get("limit")),
        statuses=_statuses(params.get("status_filter")),
        order_by=order_by,
        order_dir=order_dir,
        since_us=_since(params.get("since_completed_at")),
        include_results=include in ("true", "1"),
        after=_decode_cursor(cursor, order_by, order_dir) if cursor else None,
    )


def job_answer(run: StoredRun, job: Job, now: float) -> dict[str, Any]:
    """A job as SPEC §1 lists it; times are ISO-8601 UTC with milliseconds."""
    status = run.status(job, now)
    done = status != "processing"
    started = run.created_at + job.started_offset
    return {
        "job_public_id": run.job_id(job.index),
        "run_public_id": run.run_id,
        "collection_id": run.collection_id,
        "status": status,
        "status_code": job.status_code if done else None,
        "message": job.message if done else None,
        "url": job.url,
        "custom_id": job.custom_id,
        "queued_at": iso_ms(int(run.created_at * 1000)),
        "started_at": iso_ms(int(started * 1000)) if done or job.started_offset else None,
        "completed_at": iso_ms(run.completed_ms(job)) if done else None,
        "execution_time_ms": run.execution_ms(job) if done else None,
        "retries_attempted": 0,
        "block_reason": job.block_reason if done else None,
        "is_success": status == "completed" and 200 <= (job.status_code or 0) < 400,
    }


def _key(run: StoredRun, job: Job, query: JobQuery, now: float) -> tuple[int, int]:
    if query.order_by == "id":
        return (job.index, job.index)
    return (run.completed_ms(job) if run.finished(job, now) else _NEVER, job.index)


def list_jobs(run: StoredRun, query: JobQuery, results: Results, now: float) -> dict[str, Any]:
    selected: list[tuple[tuple[int, int], Job]] = []
    for job in run.jobs:
        if query.statuses is not None and run.status(job, now) not in query.statuses:
            continue
        if query.since_us is not None and (
            not run.finished(job, now) or run.completed_ms(job) * 1000 <= query.since_us
        ):
            continue
        selected.append((_key(run, job, query, now), job))
    descending = query.order_dir == "desc"
    selected.sort(key=lambda pair: pair[0], reverse=descending)
    if query.after is not None:
        after = query.after
        selected = [p for p in selected if (p[0] < after if descending else p[0] > after)]
    limit = min(query.limit, RESULTS_PAGE_CAP) if query.include_results else query.limit
    page, has_more = selected[:limit], len(selected) > limit
    items = []
    for _, job in page:
        item = job_answer(run, job, now)
        if query.include_results:
            item["result"] = results.inline(run, job, now)
        items.append(item)
    cursor = _encode_cursor(query.order_by, query.order_dir, page[-1][0]) if page else None
    return {"items": items, "cursor_next": cursor if has_more else None, "has_more": has_more}
