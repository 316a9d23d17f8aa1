"""Turn the API's JSON answers into the frozen models, and error bodies into text.

Tolerant of extra fields (the API grows), strict about missing or mistyped ones: those raise
`BadAnswerError` naming the call, never a KeyError or TypeError later in the reconciler.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from sprunner.api.errors import BadAnswerError, shorten
from sprunner.api.models import CollectionRef, FailedJob, Run, RunStatus, WriteResult

T = TypeVar("T")


class Answer:
    """One decoded answer plus the context needed to complain about it."""

    def __init__(self, data: Any, *, call: str, collection: str | None) -> None:
        self.data = data
        self.call = call
        self.collection = collection

    def bad(self, what: str) -> BadAnswerError:
        return BadAnswerError(
            f"unexpected answer: {what}",
            call=self.call,
            collection=self.collection,
            detail=shorten(json.dumps(self.data, default=str)),
        )

    def obj(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.bad(f"{where} is not an object")
        return value

    def items(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.bad(f"{where} is not a list")
        return value

    def field(self, obj: Mapping[str, Any], key: str, kind: type[T], where: str) -> T:
        if key not in obj:
            raise self.bad(f"{where} has no {key!r}")
        value = obj[key]
        # bool is an int in Python; a count of True is a broken answer, not 1.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.bad(f"{where}.{key} is not a {kind.__name__}")
        return value

    def ident(self, obj: Mapping[str, Any], key: str, where: str) -> str:
        """Ids are strings in the docs; accept numbers too, as some deployments use them."""
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise self.bad(f"{where} has no usable {key!r}")
        return str(value)


def collection_ref(answer: Answer, value: Any, where: str = "answer") -> CollectionRef:
    obj = answer.obj(value, where)
    return CollectionRef(
        id=answer.ident(obj, "id", where), name=answer.field(obj, "name", str, where)
    )


def collection_refs(answer: Answer) -> list[CollectionRef]:
    return [
        collection_ref(answer, item, f"answer[{i}]")
        for i, item in enumerate(answer.items(answer.data, "answer"))
    ]


def write_result(answer: Answer) -> WriteResult:
    obj = answer.obj(answer.data, "answer")
    message = obj.get("message")
    duplicates = obj.get("duplicates_skipped")
    blocked = obj.get("blocked_urls")
    invalid = obj.get("invalid_items")
    return WriteResult(
        id=answer.ident(obj, "id", "answer"),
        name=answer.field(obj, "name", str, "answer"),
        message=message if isinstance(message, str) else "",
        duplicates_skipped=duplicates if isinstance(duplicates, int) else 0,
        blocked_urls=tuple(str(u) for u in blocked) if isinstance(blocked, list) else (),
        invalid_items=tuple(invalid) if isinstance(invalid, list) else (),
    )


def _failed_job(answer: Answer, value: Any, where: str) -> FailedJob:
    obj = answer.obj(value, where)
    error = obj.get("error")
    custom_id, status_code, block_reason = (
        obj.get("custom_id"),
        obj.get("status_code"),
        obj.get("block_reason"),
    )
    return FailedJob(
        job_id=answer.ident(obj, "job_id", where),
        url=answer.field(obj, "url", str, where),
        status=answer.field(obj, "status", str, where),
        # A job may fail without a message; that is not a broken answer.
        error="" if error is None else str(error),
        # Optional extras: kept when well-typed, ignored otherwise (never a broken answer).
        custom_id=custom_id if isinstance(custom_id, str) else None,
        status_code=status_code
        if isinstance(status_code, int) and not isinstance(status_code, bool)
        else None,
        block_reason=block_reason if isinstance(block_reason, str) else None,
    )


def run(answer: Answer, value: Any, *, collection_id: str, where: str = "answer") -> Run:
    obj = answer.obj(value, where)
    status = answer.field(obj, "status", str, where)
    if status not in ("in_progress", "completed"):
        raise answer.bad(f"{where}.status is {status!r}")
    jobs = obj.get("failed_jobs")
    created_at = obj.get("created_at")
    if created_at is not None and (
        isinstance(created_at, bool) or not isinstance(created_at, (int, float))
    ):
        raise answer.bad(f"{where}.created_at is not a number")
    return Run(
        run_id=answer.ident(obj, "run_id", where),
        # We asked about this collection; an answer that omits it is still unambiguous.
        collection_id=str(obj.get("collection_id") or collection_id),
        status=cast(RunStatus, status),
        total_requests=answer.field(obj, "total_requests", int, where),
        success_requests=answer.field(obj, "success_requests", int, where),
        failed_requests=answer.field(obj, "failed_requests", int, where),
        timeout_requests=answer.field(obj, "timeout_requests", int, where),
        failed_jobs=tuple(
            _failed_job(answer, job, f"{where}.failed_jobs[{i}]")
            for i, job in enumerate(answer.items(jobs, f"{where}.failed_jobs"))
        )
        if jobs is not None
        else (),
        created_at=None if created_at is None else float(created_at),
        job_ids=_job_ids(answer, obj.get("job_ids"), f"{where}.job_ids"),
        all_jobs_persisted=_optional_bool(answer, obj, "all_jobs_persisted", where),
    )


def _job_ids(answer: Answer, value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    ids = answer.items(value, where)
    if not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
        raise answer.bad(f"{where} holds something that is not an id")
    return tuple(str(i) for i in ids)


def _optional_bool(answer: Answer, obj: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise answer.bad(f"{where}.{key} is not a bool")
    return value


def runs(answer: Answer, *, collection_id: str) -> list[Run]:
    obj = answer.obj(answer.data, "answer")
    if "items" not in obj:
        raise answer.bad("answer has no 'items'")
    return [
        run(answer, item, collection_id=collection_id, where=f"items[{i}]")
        for i, item in enumerate(answer.items(obj["items"], "items"))
    ]


def looks_like_a_page(body: bytes, content_type: str) -> bool:
    """An HTML page (a web site, a proxy's error page) rather than anything the API says."""
    if "html" in content_type.lower():
        return True
    return body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html", b"<?xml", b"<head"))


def page_summary(body: bytes, content_type: str) -> str:
    """What to say instead of printing a page: nobody reads 300 characters of markup."""
    kind = content_type.split(";")[0].strip() or "no Content-Type"
    return f"a web page ({kind}, {len(body)} bytes), which does not look like the API"


def error_detail(body: bytes, content_type: str = "") -> str:
    """The human part of an error body: `detail` or `message`, else the text itself."""
    if looks_like_a_page(body, content_type):
        return page_summary(body, content_type)
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the recursion limit
        return shorten(text)
    if isinstance(data, Mapping):
        for key in ("detail", "message"):
            value = data.get(key)
            if isinstance(value, str):
                return shorten(value)
            if value is not None:
                # FastAPI-style validation errors are a list of objects.
                return shorten(json.dumps(value, separators=(",", ":")))
    return shorten(text)
