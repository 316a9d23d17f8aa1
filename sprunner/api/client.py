"""One async method per API call (SPEC §1), with the retry rules that make them safe.

- Idempotent calls (GET, PUT, DELETE) are retried on `TransientApiError` (429, 5xx, network)
  with exponential backoff and jitter, honouring `Retry-After`; never on any other 4xx.
- POST (create, run) is not idempotent. A 429 means the API refused before doing anything,
  and a connection that could not even be opened sent nothing: both are retried. Any other
  transient failure may have taken effect, so it is raised as `AmbiguousApiError` at once:
  the reconciler must look (list by name, list runs) before it repeats.
- Every call goes through one semaphore (`parallel`) and one shared `RateLimiter`.
- The key travels only in the `Authorization` header. It is never put in an error, a log
  line or `repr`, and it is refused over plain http to anything but loopback.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from sprunner.api import parse
from sprunner.api.errors import (
    AmbiguousApiError,
    ApiError,
    AuthenticationError,
    BadAnswerError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    PermanentApiError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TransientApiError,
    TransportError,
    UnreachableError,
    shorten,
)
from sprunner.api.limiter import DEFAULT_PAUSE, RateLimiter
from sprunner.api.models import CollectionRef, Run, WriteResult
from sprunner.backoff import API_BACKOFF, Backoff
from sprunner.errors import UsageError

COLLECTIONS = "/v1/async/collections"


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _NotSent(TransportError):
    """The connection could not be opened: the request never left, so even a POST may retry."""


class ApiClient:
    """Async client of the collections API. Use as `async with ApiClient(...) as api:`."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        limiter: RateLimiter | None = None,
        parallel: int = 8,
        backoff: Backoff = API_BACKOFF,
        max_attempts: int | None = None,
        max_backoff: float | None = None,
    ) -> None:
        base_url = base_url.rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"API URL must be an absolute http(s) URL, got {base_url!r}")
        if api_key and parts.scheme == "http" and not is_loopback(parts.hostname):
            raise UsageError(
                f"refusing to send the API key over plain http to {parts.hostname}: "
                "use https (plain http is allowed only for loopback)"
            )
        self.base_url = base_url
        self.calls = 0
        self.rate_limited = 0
        self.limiter = limiter or RateLimiter()
        self._has_key = bool(api_key)
        # Kept only to scrub it from answers: a server that echoes headers must not leak it.
        self._scrub_key = api_key or None
        self._semaphore = asyncio.Semaphore(parallel)
        self._backoff = backoff  # max_attempts / max_backoff override its attempts / cap
        self._max_attempts = max(1, backoff.attempts if max_attempts is None else max_attempts)
        self._max_backoff = backoff.cap if max_backoff is None else max_backoff
        self._reached = False  # has any call ever got an HTTP answer?
        headers = {"Accept": "application/json", "User-Agent": "sprunner"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        key = "set" if self._has_key else "none"
        return f"ApiClient(base_url={self.base_url!r}, api_key=<{key}>)"

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the calls of SPEC §1 -------------------------------------------------------------

    async def list_collections(self, *, name: str | None = None) -> list[CollectionRef]:
        params = {"name": name} if name is not None else None
        answer = await self._idempotent("GET", COLLECTIONS, "list collections", name, params=params)
        return parse.collection_refs(answer)

    async def get_collection(self, collection_id: str, *, name: str | None = None) -> CollectionRef:
        answer = await self._idempotent(
            "GET", _one(collection_id), "get collection", name or collection_id
        )
        return parse.collection_ref(answer, answer.data)

    async def create_collection(
        self, name: str, requests: Sequence[Mapping[str, Any]], *, idempotency_key: str
    ) -> WriteResult:
        answer = await self._post(
            COLLECTIONS,
            "create collection",
            name,
            body=_collection_body(name, requests),
            headers={"Idempotency-Key": idempotency_key},
        )
        return parse.write_result(answer)

    async def update_collection(
        self, collection_id: str, name: str, requests: Sequence[Mapping[str, Any]]
    ) -> WriteResult:
        answer = await self._idempotent(
            "PUT",
            _one(collection_id),
            "update collection",
            name,
            body=_collection_body(name, requests),
        )
        return parse.write_result(answer)

    async def delete_collection(self, collection_id: str, *, name: str | None = None) -> None:
        await self._idempotent(
            "DELETE", _one(collection_id), "delete collection", name or collection_id, empty_ok=True
        )

    async def start_run(self, collection_id: str, *, name: str | None = None) -> Run:
        answer = await self._post(
            f"{_one(collection_id)}/run", "start run", name or collection_id, body=None
        )
        return parse.run(answer, answer.data, collection_id=collection_id)

    async def get_run(self, collection_id: str, run_id: str, *, name: str | None = None) -> Run:
        answer = await self._idempotent(
            "GET",
            f"{_one(collection_id)}/runs/{quote(run_id, safe='')}",
            "get run",
            name or collection_id,
        )
        run = parse.run(answer, answer.data, collection_id=collection_id)
        if run.run_id != run_id:
            # Taking another run's counts for ours would report the wrong jobs.
            raise answer.bad(f"answer is about run {run.run_id!r}, not {run_id!r}")
        return run

    async def list_runs(
        self,
        collection_id: str,
        *,
        status: Literal["in_progress", "completed"] | None = None,
        name: str | None = None,
    ) -> list[Run]:
        params = {"status_filter": status} if status is not None else None
        answer = await self._idempotent(
            "GET", f"{_one(collection_id)}/runs", "list runs", name or collection_id, params=params
        )
        return parse.runs(answer, collection_id=collection_id)

    # --- retry policies ---------------------------------------------------------------------

    async def _idempotent(
        self,
        method: str,
        path: str,
        call: str,
        collection: str | None,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        empty_ok: bool = False,
    ) -> parse.Answer:
        try:
            async for attempt in self._retrying(lambda e: isinstance(e, TransientApiError)):
                with attempt:
                    return await self._send(
                        method, path, call, collection, params=params, body=body, empty_ok=empty_ok
                    )
        except TransportError as error:
            if not self._reached:
                # Not one answer, ever: the API is unusable, not just this collection.
                raise UnreachableError(
                    "cannot reach the API", call=call, collection=collection, detail=error.detail
                ) from error
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _post(
        self,
        path: str,
        call: str,
        collection: str | None,
        *,
        body: Any,
        headers: Mapping[str, str] | None = None,
    ) -> parse.Answer:
        try:
            async for attempt in self._retrying(
                lambda e: isinstance(e, (RateLimitedError, _NotSent))
            ):
                with attempt:
                    return await self._send(
                        "POST", path, call, collection, body=body, headers=headers
                    )
        except _NotSent as error:
            raise TransportError(
                error.reason, call=call, collection=collection, detail=error.detail
            ) from error
        except (ServerError, TransportError) as error:
            raise AmbiguousApiError(error) from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _retrying(self, retry_on: Any) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(retry_on),
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            # Honour the server's word, plus a little jitter so callers do not return together.
            wait = min(error.retry_after, self._max_backoff)
            return wait + random.uniform(0, min(0.1 * wait + 0.05, self._max_backoff - wait))
        # "Full jitter" exponential backoff.
        ceiling = min(self._max_backoff, self._backoff.base * 2 ** (state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)

    # --- one HTTP exchange --------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        call: str,
        collection: str | None,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        empty_ok: bool = False,
    ) -> parse.Answer:
        async with self._semaphore:
            await self.limiter.acquire()
            self.calls += 1
            try:
                if isinstance(body, bytes):
                    response = await self._http.request(
                        method,
                        path,
                        params=params,
                        content=body,
                        headers={**(headers or {}), "Content-Type": "application/json"},
                    )
                else:
                    response = await self._http.request(
                        method, path, params=params, json=body, headers=headers
                    )
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                raise _NotSent(
                    "could not connect", call=call, collection=collection, detail=_describe(error)
                ) from error
            except httpx.TimeoutException as error:
                raise TransportError(
                    "timed out", call=call, collection=collection, detail=_describe(error)
                ) from error
            except httpx.TransportError as error:
                raise TransportError(
                    "connection failed", call=call, collection=collection, detail=_describe(error)
                ) from error
        self._reached = True
        if response.status_code == 429:
            self.rate_limited += 1
        else:
            self.limiter.on_success()
        if response.status_code >= 400:
            raise self._error(response, call, collection)
        if empty_ok and not response.content.strip():
            return parse.Answer(None, call=call, collection=collection)
        try:
            data = json.loads(response.content)
        except (ValueError, RecursionError) as error:  # "[[[[…" nests past the recursion limit
            raise BadAnswerError(
                "answer is not JSON",
                call=call,
                collection=collection,
                status=response.status_code,
                detail=self._scrub(shorten(response.text)),
            ) from error
        return parse.Answer(data, call=call, collection=collection)

    def _scrub(self, text: str) -> str:
        return text.replace(self._scrub_key, "***") if self._scrub_key else text

    def _error(self, response: httpx.Response, call: str, collection: str | None) -> ApiError:
        status = response.status_code
        detail = self._scrub(parse.error_detail(response.content))
        kw: dict[str, Any] = {"call": call, "collection": collection, "status": status}
        if status == 429:
            if "quota" in detail.lower():
                return QuotaExceededError("monthly quota spent", detail=detail, **kw)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                retry_after = min(retry_after, self._max_backoff)
            self.limiter.on_rate_limited(
                retry_after if retry_after is not None else min(DEFAULT_PAUSE, self._max_backoff)
            )
            return RateLimitedError("rate limited", retry_after=retry_after, detail=detail, **kw)
        if status == 401:
            return AuthenticationError("the API key was refused", detail=detail, **kw)
        if status == 403:
            return ForbiddenError("forbidden", detail=detail, **kw)
        if status == 404:
            return NotFoundError("not found", detail=detail, **kw)
        if status in (400, 422):
            return InvalidRequestError("request refused", detail=detail, **kw)
        if status >= 500:
            return ServerError("server error", detail=detail, **kw)
        return PermanentApiError("unexpected status", detail=detail, **kw)


def _collection_body(name: str, requests: Sequence[Mapping[str, Any]]) -> bytes:
    """The create / PUT body, serialised once: every retry sends the same bytes.

    The request tuple is serialised in place (no list copy) and compactly; for a
    50,000-request collection this is the one copy of the body that exists besides the
    requests themselves.
    """
    items = requests if isinstance(requests, (list, tuple)) else list(requests)
    text = json.dumps({"name": name, "requests": items}, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def _one(collection_id: str) -> str:
    return f"{COLLECTIONS}/{quote(collection_id, safe='')}"


def _describe(error: httpx.HTTPError) -> str:
    # httpx messages name the URL at most, never headers; keep the type for readability.
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if text != type(error).__name__ else text
