"""What one HTTP exchange means: its record for logs and metrics, and its error class.

`error_for` is the one mapping from an HTTP error answer to the `ApiError` tree (SPEC §1
statuses). It has no side effects: the client tells the rate limiter about a 429 itself.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sprunner.api import parse, parse_jobs
from sprunner.api.errors import (
    ApiError,
    AuthenticationError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    PermanentApiError,
    QuotaExceededError,
    RateLimitedError,
    ResultUnavailableError,
    ServerError,
    shorten,
)


class Answered(Protocol):
    """What is read of an answer (`http.Received`; an `httpx.Response` has it too)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes | bytearray: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class CallRecord:
    """One HTTP exchange, for `-vv` logs and metrics: nothing in it names a collection.

        `call` is the call's name ("get run"); `route` the method and path template
        (`GET /v1/async/collections/{id}/runs/{run_id}`); `status` is None when no HTTP answer
        came, and then `error` names the kind of failure (`ReadTimeout`, `ConnectError`,
    `EndpointError`); `duration` is seconds from sending to
        the answer, waits for the rate limiter and the window excluded.
    """

    call: str
    method: str
    route: str
    status: int | None
    duration: float
    error: str | None = None


def route_template(method: str, path: str) -> str:
    """The path with its ids taken out, so that metrics do not grow a series per collection."""
    parts = path.split("/")
    # /v1/async/collections/<id>/runs/<run_id>/jobs/<job_id>/result: ids at fixed places.
    for index, name in ((4, "{id}"), (6, "{run_id}"), (8, "{job_id}")):
        if len(parts) > index:
            parts[index] = name
    return f"{method} {'/'.join(parts)}"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` is seconds or an HTTP date; anything else is ignored."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def body_text(response: Answered) -> str:
    """A body fit for a message: a web page is summarised, anything else cut short."""
    content_type = response.headers.get("Content-Type", "")
    if parse.looks_like_a_page(response.content, content_type):
        return parse.page_summary(response.content, content_type)
    return shorten(response.text)


def error_for(
    response: Answered,
    *,
    call: str,
    collection: str | None,
    detail: str,
    retry_after: float | None,
) -> ApiError:
    """The error class of an answer >= 400. `detail` arrives already scrubbed of secrets."""
    status = response.status_code
    kw: dict[str, Any] = {"call": call, "collection": collection, "status": status}
    if status == 429:
        if "quota" in detail.lower():
            return QuotaExceededError("monthly quota spent", detail=detail, **kw)
        return RateLimitedError("rate limited", retry_after=retry_after, detail=detail, **kw)
    if status == 401:
        return AuthenticationError("the API key was refused", detail=detail, **kw)
    if status == 403:
        return ForbiddenError("forbidden", detail=detail, **kw)
    if status == 404:
        code = parse_jobs.result_code(response.content)
        if code is not None:
            return ResultUnavailableError(code[0], code=code[0], detail=code[1] or None, **kw)
        return NotFoundError("not found", detail=detail, **kw)
    if status in (400, 422):
        return InvalidRequestError("request refused", detail=detail, **kw)
    if status >= 500:
        return ServerError("server error", detail=detail, **kw)
    return PermanentApiError("unexpected status", detail=detail, **kw)
