"""Parse the jobs listing and the single-result answers (SPEC §1), and the result's 404 codes.

Same rules as `parse`: extra fields are fine, missing required fields and wrong types are a
`BadAnswerError`. A page is also judged as a whole: more items than were asked for, or
`has_more` without a cursor that moves, would make a drain loop forever or run out of
memory, so they are bad answers too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sprunner.api.models import JOB_STATUSES, Job, JobPage
from sprunner.api.parse import Answer

RESULT_CODES = frozenset({"result_pending", "result_expired", "result_lost", "job_id_invalid"})

_OPTIONAL_STR = ("message", "custom_id", "queued_at", "started_at", "completed_at", "block_reason")


def job_page(
    answer: Answer, *, run_id: str, collection_id: str, cursor: str | None, limit: int
) -> JobPage:
    obj = answer.obj(answer.data, "answer")
    if "items" not in obj:
        raise answer.bad("answer has no 'items'")
    items = answer.items(obj["items"], "items")
    if len(items) > limit:
        raise answer.bad(f"the page holds {len(items)} jobs, more than the {limit} asked for")
    has_more = obj.get("has_more")
    if not isinstance(has_more, bool):
        raise answer.bad("answer has no boolean 'has_more'")
    cursor_next = obj.get("cursor_next")
    if cursor_next is not None and (not isinstance(cursor_next, str) or cursor_next == ""):
        raise answer.bad("cursor_next is not a string")
    if has_more and cursor_next is None:
        raise answer.bad("has_more without a cursor_next")
    if has_more and cursor_next == cursor:
        raise answer.bad("the cursor does not move: following it would never end")
    return JobPage(
        items=tuple(
            job(answer, item, run_id=run_id, collection_id=collection_id, where=f"items[{i}]")
            for i, item in enumerate(items)
        ),
        cursor_next=cursor_next,
        has_more=has_more,
    )


def job(answer: Answer, value: Any, *, run_id: str, collection_id: str, where: str) -> Job:
    obj = answer.obj(value, where)
    status = answer.field(obj, "status", str, where)
    if status not in JOB_STATUSES:
        raise answer.bad(f"{where}.status is {status!r}")
    job_run = answer.ident(obj, "run_public_id", where) if "run_public_id" in obj else run_id
    if job_run != run_id:
        raise answer.bad(f"{where} is a job of run {job_run!r}, not {run_id!r}")
    has_result = "result" in obj
    result = obj.get("result")
    if result is not None and not isinstance(result, Mapping):
        raise answer.bad(f"{where}.result is not an object")
    strings = {key: _optional(answer, obj, key, str, where) for key in _OPTIONAL_STR}
    return Job(
        job_id=answer.ident(obj, "job_public_id", where),
        run_id=run_id,
        collection_id=(
            answer.ident(obj, "collection_id", where)
            if obj.get("collection_id") is not None
            else collection_id
        ),
        status=status,  # narrowed by the check against JOB_STATUSES above
        url=answer.field(obj, "url", str, where),
        status_code=_optional(answer, obj, "status_code", int, where),
        execution_time_ms=_number(answer, obj, "execution_time_ms", where),
        retries_attempted=_optional(answer, obj, "retries_attempted", int, where),
        is_success=_optional(answer, obj, "is_success", bool, where),
        result=result,
        has_result=has_result,
        **strings,
    )


def _optional(answer: Answer, obj: Mapping[str, Any], key: str, kind: type[Any], where: str) -> Any:
    if obj.get(key) is None:
        return None
    return answer.field(obj, key, kind, where)


def _number(answer: Answer, obj: Mapping[str, Any], key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise answer.bad(f"{where}.{key} is not a number")
    return value  # an int stays an int: it is written back out as the API gave it


def result_body(answer: Answer) -> Mapping[str, Any]:
    return answer.obj(answer.data, "answer")


def result_code(body: bytes) -> tuple[str, str] | None:
    """`(error_code, message)` of a result 404 `{"detail": {"error_code", "message"}}`, else None.

    Only the four documented codes count: any other 404 (no such run, a proxy's page) stays
    a plain not-found.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    detail = data.get("detail") if isinstance(data, Mapping) else None
    if not isinstance(detail, Mapping):
        return None
    code = detail.get("error_code")
    if code not in RESULT_CODES:
        return None
    message = detail.get("message")
    return str(code), message if isinstance(message, str) else ""
