"""One HTTP exchange with the API: window, rate limiter, transport errors, error answers.

Below the retry policies of `client.py`: this sends once and says what happened, as an
`Answer` or as an error of the `ApiError` tree. It owns what every attempt shares: the
window of calls in flight, the rate limiter, the httpx client (`httpclient.py`), the per-call
records, and whether the API has ever answered (before that, a transport failure means
"unreachable", and a web page means "this URL is not the API").

Whatever the answer (malformed HTTP, a body over its cap, JSON nested past any parser),
the caller gets an `ApiError`: nothing from the wire escapes as another exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from sprunner.api import httpclient, parse
from sprunner.api.calls import (
    Answered,
    CallRecord,
    body_text,
    error_for,
    parse_retry_after,
    route_template,
)
from sprunner.api.errors import (
    ApiError,
    BadAnswerError,
    EndpointError,
    ResultUnavailableError,
    TransportError,
)
from sprunner.api.limiter import DEFAULT_PAUSE, RateLimiter, rate_headers
from sprunner.api.transport import (
    describe,
    endpoint_problem,
    hung_up_silently,
    port_problem,
    safe_url,
)
from sprunner.api.window import CallWindow, Signal, priority_of


class NotSent(TransportError):
    """The connection could not be opened: the request never left, so even a POST may retry."""


class Exchange:
    """Sends one request at a time per caller; shared by every caller of one client."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        limiter: RateLimiter,
        window: CallWindow,
        retry_after_cap: float,
        scrub_key: str | None,
        on_call: Callable[[CallRecord], None] | None,
    ) -> None:
        self.base_url = base_url
        self.limiter = limiter
        self.window = window
        self.calls = 0
        self.rate_limited = 0
        self.observer_failures = 0
        self.reached = False  # has any call ever got an HTTP answer?
        self._retry_after_cap = retry_after_cap
        # Kept only to scrub it from answers: a server that echoes headers must not leak it.
        self._scrub_key = scrub_key
        self._on_call = on_call
        self._probed = False
        self._http = httpclient.new_client(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
        )
        self._gate = httpclient.PoolGate()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
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
        cap: int | None = None,  # httpclient.MAX_ANSWER
    ) -> parse.Answer:
        started = await self.window.acquire(priority_of(call, rate_bound=self.limiter.throttling))
        signal: Signal = "neutral"
        sent = time.monotonic()
        try:
            await self.limiter.acquire()
            # Latency counts from here: time spent waiting for the limiter is not the server's.
            started = self.window.now()
            self.calls += 1
            sent = time.monotonic()
            response = await self._request(
                method, path, call, collection, params, body, headers, cap
            )
            status = response.status_code
            signal = "congestion" if status == 429 or status >= 500 else "ok"
            self._record(call, method, path, status, time.monotonic() - sent, None)
        except (TransportError, EndpointError) as error:
            # A wrong endpoint says nothing about load; a failed connection may be overload.
            signal = "neutral" if isinstance(error, EndpointError) else "congestion"
            # The kind of failure only: its message names the URL, which holds ids.
            kind = type(error.__cause__ or error).__name__
            self._record(call, method, path, None, time.monotonic() - sent, kind)
            raise
        finally:
            self.window.release(started, signal=signal)
        return self._answer(response, call, collection, path, empty_ok=empty_ok)

    async def _request(
        self,
        method: str,
        path: str,
        call: str,
        collection: str | None,
        params: Mapping[str, str] | None,
        body: Any,
        headers: Mapping[str, str] | None,
        cap: int | None,
    ) -> Answered:
        """One HTTP request; transport failures become our errors, naming the URL."""
        url = safe_url(self.base_url, path)
        kw: dict[str, Any] = {"call": call, "collection": collection}
        content = None
        if body is not None:
            content = body if isinstance(body, bytes) else parse.encode_json(body)
            headers = httpclient.json_headers(headers)
        try:
            return await httpclient.exchange(
                self._http,
                method,
                path,
                params=params,
                content=content,
                headers=headers,
                cap=httpclient.MAX_ANSWER if cap is None else cap,
                gate=self._gate,
            )
        except httpclient.AnswerTooLarge as error:
            raise BadAnswerError(f"{error} [{url}]", **kw) from None
        except httpx.TransportError as error:
            scheme = urlsplit(self.base_url).scheme
            problem = endpoint_problem(error, scheme, first_contact=not self.reached)
            if problem is None and hung_up_silently(error):
                problem = await self._probe()
            if problem is not None:
                raise EndpointError(f"{problem} [{url}]", **kw) from error
            detail = describe(error)
            if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
                raise NotSent(f"could not connect to {url}", detail=detail, **kw) from error
            if isinstance(error, httpx.TimeoutException):
                raise TransportError(f"timed out at {url}", detail=detail, **kw) from error
            raise TransportError(f"connection to {url} failed", detail=detail, **kw) from error
        except (httpx.HTTPError, ValueError, UnicodeError) as error:
            # A body that cannot be decoded (a broken gzip stream), or anything else a
            # library raises about what the server sent: a garbled answer, not a crash.
            detail = describe(error)
            raise TransportError(f"malformed answer from {url}", detail=detail, **kw) from error

    async def _probe(self) -> str | None:
        """Before the API ever answered an http:// URL: is a silent hang-up a wrong port?"""
        parts = urlsplit(self.base_url)
        if self.reached or self._probed or parts.scheme != "http" or not parts.hostname:
            return None
        self._probed = True  # one probe per client: a real outage must not pay it often
        return await port_problem(parts.hostname, parts.port or 80)

    def _answer(
        self,
        response: Answered,
        call: str,
        collection: str | None,
        path: str,
        *,
        empty_ok: bool,
    ) -> parse.Answer:
        first_answer = not self.reached
        self.reached = True
        if response.status_code == 429:
            self.rate_limited += 1
        else:
            self.limiter.on_success()
        # An empty budget is waited out as a 429's Retry-After is: within the client's cap.
        self.limiter.on_rate_headers(
            *rate_headers(response.headers), max_wait=self._retry_after_cap
        )
        content_type = response.headers.get("Content-Type", "")
        status = response.status_code
        if (
            first_answer
            and status != 429
            and 400 <= status < 500  # a proxy's 502 page in front of the real API may pass
            and parse.looks_like_a_page(response.content, content_type)
        ):
            # The first thing this URL says is a web page: it is not the API.
            raise EndpointError(
                f"{parse.page_summary(response.content, content_type)} "
                f"[HTTP {response.status_code} from {safe_url(self.base_url, path)}]; "
                "is the API URL right?",
                call=call,
                collection=collection,
            )
        if response.status_code >= 400:
            raise self._error(response, call, collection)
        if empty_ok and not response.content.strip():
            return parse.Answer(None, call=call, collection=collection)
        try:
            data = parse.decode_json(response.content)
        except ValueError as error:
            raise BadAnswerError(
                "answer is not JSON",
                call=call,
                collection=collection,
                status=response.status_code,
                detail=self._scrub(body_text(response)),
            ) from error
        return parse.Answer(data, call=call, collection=collection, raw=response.content)

    def _record(
        self,
        call: str,
        method: str,
        path: str,
        status: int | None,
        duration: float,
        error: str | None,
    ) -> None:
        if self._on_call is None:
            return
        record = CallRecord(call, method, route_template(method, path), status, duration, error)
        try:
            self._on_call(record)
        except Exception:
            self.observer_failures += 1

    def _scrub(self, text: str) -> str:
        return text.replace(self._scrub_key, "***") if self._scrub_key else text

    def _error(self, response: Answered, call: str, collection: str | None) -> ApiError:
        content_type = response.headers.get("Content-Type", "")
        detail = self._scrub(parse.error_detail(response.content, content_type))
        retry_after = None
        if response.status_code == 429 and "quota" not in detail.lower():
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                retry_after = min(retry_after, self._retry_after_cap)
            self.limiter.on_rate_limited(
                retry_after
                if retry_after is not None
                else min(DEFAULT_PAUSE, self._retry_after_cap)
            )
        error = error_for(
            response, call=call, collection=collection, detail=detail, retry_after=retry_after
        )
        if isinstance(error, ResultUnavailableError) and error.detail:
            error.detail = self._scrub(error.detail)
        return error
