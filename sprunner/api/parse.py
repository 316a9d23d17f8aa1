"""Turn the API's JSON answers into the frozen models, and error bodies into text.

Each answer is first checked against its declared model (`answers.py`); a value outside it
raises `BadAnswerError` naming the call and the field (`answer.items[3].completed_at: ...`),
never a KeyError or TypeError later in the reconciler. The checked answer is then copied
into the frozen dataclasses of `models.py`, which the rest of sprunner reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from sprunner.api.answers import (
    CollectionAnswer,
    FailedJobAnswer,
    RunAnswer,
    RunsAnswer,
    WriteAnswer,
)
from sprunner.api.errors import BadAnswerError, shorten
from sprunner.api.models import CollectionRef, FailedJob, Run, WriteResult

try:  # parses straight from bytes: no decoded copy of a 100 MB body (a declared dependency)
    import orjson
except ImportError:  # pragma: no cover - a platform without its wheel
    orjson = None  # type: ignore[assignment]

M = TypeVar("M", bound=BaseModel)
_COLLECTIONS = TypeAdapter(list[CollectionAnswer])
_SHOWN = 2000  # bytes of a bad answer shown (then cut shorter by `shorten`)


def decode_json(body: bytes | bytearray) -> Any:
    """The JSON value of `body`. Raises ValueError (nesting too deep included).

    orjson first (fast, no decoded copy); what it refuses that JSON allows (a lone
    surrogate escape, a number past 64 bits, nesting past 1,024) goes to the standard
    parser, whose own refusals (nesting past the recursion limit) are ValueErrors too."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def encode_json(body: Any) -> bytes:
    """A JSON body as httpx encodes `json=`: compact, UTF-8."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class Answer:
    """One decoded answer plus the context needed to complain about it."""

    def __init__(
        self, data: Any, *, call: str, collection: str | None, raw: bytes | bytearray = b""
    ) -> None:
        self.data = data
        self.call = call
        self.collection = collection
        self._raw = raw

    def bad(self, what: str) -> BadAnswerError:
        shown = bytes(self._raw[:_SHOWN]).decode("utf-8", errors="replace")
        return BadAnswerError(
            f"unexpected answer: {what}",
            call=self.call,
            collection=self.collection,
            detail=shorten(shown) if shown else None,
        )

    def check(self, model: type[M], value: Any, where: str = "answer") -> M:
        """`value` as `model`, or a `BadAnswerError` naming the first field at fault."""
        try:
            return model.model_validate(value)
        except ValidationError as error:
            raise self.bad(_first_problem(error, value, where)) from None

    def checked_list(self, adapter: TypeAdapter[list[M]], where: str = "answer") -> list[M]:
        try:
            return adapter.validate_python(self.data)
        except ValidationError as error:
            raise self.bad(_first_problem(error, self.data, where)) from None


_SAID = {
    "int_type": "is not an integer",
    "string_type": "is not a string",
    "string_unicode": "holds a lone UTF-16 surrogate",
    "bool_type": "is not a boolean",
    "float_type": "is not a number",
    "list_type": "is not a list",
    "dict_type": "is not an object",
    "model_type": "is not an object",
    "model_attributes_type": "is not an object",
    "finite_number": "is not a finite number",
}


def _first_problem(error: ValidationError, data: Any, where: str) -> str:
    """`answer.items[3].completed_at is not a string`: the first problem, by the path of
    the field in the answer (pydantic's own tags for members of a union are left out)."""
    problem = error.errors(include_url=False)[0]
    path, value = where, data
    for part in problem["loc"]:
        if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            path, value = f"{path}[{part}]", value[part]
        elif isinstance(value, Mapping) and part in value:
            path, value = f"{path}.{part}", value[part]
        elif isinstance(value, Mapping) and problem["type"] == "missing":
            return f"{path} has no {part!r}"
    kind = problem["type"]
    if kind in _SAID:
        return f"{path} {_SAID[kind]}"
    message = str(problem["msg"])
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if kind in ("literal_error", "greater_than_equal", "less_than_equal", "string_too_short"):
        return f"{path} is {_shown(value)} ({message})"
    return f"{path} {message}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def collection_ref(answer: Answer, value: Any) -> CollectionRef:
    checked = answer.check(CollectionAnswer, value)
    return CollectionRef(id=str(checked.id), name=checked.name)


def collection_refs(answer: Answer) -> list[CollectionRef]:
    return [CollectionRef(id=str(c.id), name=c.name) for c in answer.checked_list(_COLLECTIONS)]


def write_result(answer: Answer) -> WriteResult:
    checked = answer.check(WriteAnswer, answer.data)
    return WriteResult(
        id=str(checked.id),
        name=checked.name,
        message=checked.message or "",
        duplicates_skipped=checked.duplicates_skipped or 0,
        blocked_urls=tuple(checked.blocked_urls or ()),
        invalid_items=tuple(checked.invalid_items or ()),
    )


def _failed_job(job: FailedJobAnswer) -> FailedJob:
    return FailedJob(
        job_id=str(job.job_id),
        url=job.url,
        status=job.status,
        error=job.error,
        custom_id=job.custom_id,
        status_code=job.status_code,
        block_reason=job.block_reason,
    )


def run_of(checked: RunAnswer, *, collection_id: str) -> Run:
    return Run(
        run_id=str(checked.run_id),
        # We asked about this collection; an answer that omits it is still unambiguous.
        collection_id=str(checked.collection_id or collection_id),
        status=checked.status,
        total_requests=checked.total_requests,
        success_requests=checked.success_requests,
        failed_requests=checked.failed_requests,
        timeout_requests=checked.timeout_requests,
        failed_jobs=tuple(_failed_job(j) for j in checked.failed_jobs or ()),
        created_at=checked.created_at,
        job_ids=tuple(str(i) for i in checked.job_ids or ()),
        all_jobs_persisted=checked.all_jobs_persisted,
    )


def run(answer: Answer, value: Any, *, collection_id: str) -> Run:
    return run_of(answer.check(RunAnswer, value), collection_id=collection_id)


def runs(answer: Answer, *, collection_id: str) -> list[Run]:
    checked = answer.check(RunsAnswer, answer.data)
    return [run_of(item, collection_id=collection_id) for item in checked.items]


def looks_like_a_page(body: bytes | bytearray, content_type: str) -> bool:
    """An HTML page (a web site, a proxy's error page) rather than anything the API says."""
    if "html" in content_type.lower():
        return True
    head = bytes(body[:64]).lstrip()[:15].lower()
    return head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head"))


def page_summary(body: bytes | bytearray, content_type: str) -> str:
    """What to say instead of printing a page: nobody reads 300 characters of markup."""
    kind = content_type.split(";")[0].strip() or "no Content-Type"
    return f"a web page ({kind}, {len(body)} bytes), which does not look like the API"


def error_detail(body: bytes | bytearray, content_type: str = "") -> str:
    """The human part of an error body: `detail` or `message`, else the text itself."""
    if looks_like_a_page(body, content_type):
        return page_summary(body, content_type)
    text = bytes(body).decode("utf-8", errors="replace")
    try:
        data = decode_json(body)
    except ValueError:  # not JSON, or nested past the recursion limit
        return shorten(text)
    if isinstance(data, Mapping):
        for key in ("detail", "message"):
            value = data.get(key)
            if isinstance(value, str):
                return shorten(value)
            if value is not None:
                # FastAPI-style validation errors are a list of objects.
                try:
                    return shorten(json.dumps(value, separators=(",", ":")))
                except (ValueError, RecursionError):
                    break
    return shorten(text)
