"""The API error tree.

Three questions decide what a caller does with an API failure, and the classes answer them:

- Is it worth retrying? `TransientApiError` (429, 5xx, transport) yes; `PermanentApiError` no.
- Might the request have taken effect? `AmbiguousApiError` wraps a transient failure of a
  non-idempotent POST (create, run): the caller must look before it repeats.
- Can the API be used at all? `ApiUnusableError` (bad key, quota spent, unreachable) ends the
  whole apply with exit 3; everything else fails one collection only.

Messages name the call and the collection and cut long bodies short. They never contain
the API key: the client never puts headers into an error.
"""

from __future__ import annotations

import re
from typing import ClassVar

from sprunner.errors import EXIT_API_UNUSABLE, SprunnerError
from sprunner.util import redact

BODY_LIMIT = 300
_SURROGATE = re.compile("[\ud800-\udfff]")


def shorten(text: str, limit: int = BODY_LIMIT) -> str:
    """Cut a body to `limit` characters, saying how much was dropped.

    Secrets are masked before the cut: cut first, and a server that echoes the key could
    leave half of it behind, which no later redaction would recognise.
    """
    # A lone surrogate (from a `\ud800` escape) could not be printed, logged or stored.
    text = _SURROGATE.sub("\ufffd", redact.current().redact(text)).strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


class ApiError(SprunnerError):
    """A call to the API failed."""

    def __init__(
        self,
        message: str,
        *,
        call: str,
        collection: str | None = None,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.call = call
        self.collection = collection
        self.status = status
        self.detail = detail
        self.reason = message
        where = call if collection is None else f"{call} (collection {collection!r})"
        status_text = f" [HTTP {status}]" if status is not None else ""
        detail_text = f": {shorten(detail)}" if detail else ""
        super().__init__(f"{where}: {message}{status_text}{detail_text}")


class TransientApiError(ApiError):
    """Retrying later may succeed."""


class PermanentApiError(ApiError):
    """Retrying the same call will not help."""


class ApiUnusableError(ApiError):
    """The API cannot be used at all; mixed into the classes that end an apply (exit 3)."""

    exit_code: ClassVar[int] = EXIT_API_UNUSABLE


class RateLimitedError(TransientApiError):
    """429 with an optional Retry-After (seconds)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class ServerError(TransientApiError):
    """5xx from the API."""


class TransportError(TransientApiError):
    """Timeout, refused or reset connection: no HTTP answer at all."""


class UnreachableError(TransportError, ApiUnusableError):
    """The API could not be reached even after retries (raised by the first call of an apply)."""


class AuthenticationError(PermanentApiError, ApiUnusableError):
    """401: the key is missing or wrong."""


class QuotaExceededError(PermanentApiError, ApiUnusableError):
    """429 whose detail mentions the quota: the month's credits are spent; never retried."""


class NotFoundError(PermanentApiError):
    """404."""


class ResultUnavailableError(NotFoundError):
    """404 on a job's result with one of the documented codes (SPEC §1).

    `code` is `result_pending` (not finished yet: ask later), `result_expired` (kept 24 hours
    only), `result_lost` or `job_id_invalid`.
    """

    def __init__(self, message: str, *, code: str, **kw: object) -> None:
        self.code = code
        super().__init__(message, **kw)  # type: ignore[arg-type]


class EndpointError(PermanentApiError, ApiUnusableError):
    """The URL does not lead to the API: TLS failed, the peer does not speak HTTP (wrong
    port, http to an https port or the reverse), or it answers pages that are not the API.

    Never retried: unlike a dropped connection, waiting does not change any of these.
    """


class ForbiddenError(PermanentApiError):
    """403, e.g. a country proxy that the account may not use."""


class InvalidRequestError(PermanentApiError):
    """400 or 422: the body was refused (invalid, or a blocked URL)."""


class BadAnswerError(PermanentApiError):
    """The API answered, but not with JSON of the documented shape."""


class AmbiguousApiError(ApiError):
    """A POST failed in a way that leaves open whether it took effect.

    `cause` is the transient failure. The caller must check the remote side (list by name,
    list runs) before trying again.
    """

    def __init__(self, cause: TransientApiError) -> None:
        self.cause = cause
        super().__init__(
            f"may or may not have taken effect: {cause.reason}",
            call=cause.call,
            collection=cause.collection,
            status=cause.status,
            detail=cause.detail,
        )
