"""Parse the jobs listing and the single-result answers (SPEC §1), and the result's 404 codes.

Same rules as `parse`: each page is checked against its declared model (`answers.py`). A
page is also judged as a whole: more items than were asked for, a job of another run, or
`has_more` without a cursor that moves, would make a drain loop forever or run out of
memory, so they are bad answers too. (Paging that moves but never ends is bounded by
`paging.py`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sprunner.api.answers import JobAnswer, JobPageAnswer
from sprunner.api.models import Job, JobPage
from sprunner.api.parse import Answer, decode_json

RESULT_CODES = frozenset({"result_pending", "result_expired", "result_lost", "job_id_invalid"})


def job_page(
    answer: Answer, *, run_id: str, collection_id: str, cursor: str | None, limit: int
) -> JobPage:
    obj = answer.data
    items = obj.get("items") if isinstance(obj, Mapping) else None
    if isinstance(items, list) and len(items) > limit:  # judged before each item is checked
        raise answer.bad(f"the page holds {len(items)} jobs, more than the {limit} asked for")
    page = answer.check(JobPageAnswer, obj)
    if page.has_more and page.cursor_next is None:
        raise answer.bad("has_more without a cursor_next")
    if page.has_more and page.cursor_next == cursor:
        raise answer.bad("the cursor does not move: following it would never end")
    return JobPage(
        items=tuple(
            _job(answer, item, run_id=run_id, collection_id=collection_id, where=f"items[{i}]")
            for i, item in enumerate(page.items)
        ),
        cursor_next=page.cursor_next,
        has_more=page.has_more,
    )


def _job(answer: Answer, job: JobAnswer, *, run_id: str, collection_id: str, where: str) -> Job:
    if job.run_public_id is not None and str(job.run_public_id) != run_id:
        raise answer.bad(f"answer.{where} is a job of run {job.run_public_id!r}, not {run_id!r}")
    return Job(
        job_id=str(job.job_public_id),
        run_id=run_id,
        collection_id=str(job.collection_id) if job.collection_id is not None else collection_id,
        status=job.status,
        url=job.url,
        status_code=job.status_code,
        message=job.message,
        custom_id=job.custom_id,
        queued_at=job.queued_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        execution_time_ms=job.execution_time_ms,
        retries_attempted=job.retries_attempted,
        block_reason=job.block_reason,
        is_success=job.is_success,
        result=job.result,
        has_result="result" in job.model_fields_set,
    )


def result_body(answer: Answer) -> Mapping[str, Any]:
    if not isinstance(answer.data, dict):
        raise answer.bad("answer is not an object")
    return answer.data


def result_code(body: bytes | bytearray) -> tuple[str, str] | None:
    """`(error_code, message)` of a result 404 `{"detail": {"error_code", "message"}}`, else None.

    Only the four documented codes count: any other 404 (no such run, a proxy's page) stays
    a plain not-found.
    """
    try:
        data = decode_json(body)
    except ValueError:
        return None
    detail = data.get("detail") if isinstance(data, Mapping) else None
    if not isinstance(detail, Mapping):
        return None
    code = detail.get("error_code")
    if code not in RESULT_CODES:
        return None
    message = detail.get("message")
    return str(code), message if isinstance(message, str) else ""
