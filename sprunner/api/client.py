"""One async method per API call (SPEC §1), with the retry rules that make them safe.

- Idempotent calls (GET, PUT, DELETE) are retried on `TransientApiError` (429, 5xx, network)
  with exponential backoff and jitter, honouring `Retry-After`; never on any other 4xx.
- POST (create, run) is not idempotent. A 429 means the API refused before doing anything,
  and a connection that could not even be opened sent nothing: both are retried. Any other
  transient failure may have taken effect, so it is raised as `AmbiguousApiError` at once:
  the reconciler must look (list by name, list runs) before it repeats.
- Every call goes through one window of calls in flight (`CallWindow`, capped by
  `parallel`) and one shared `RateLimiter`; every repeat through `backoff.retry_call`.
- A wrong endpoint (TLS refused, a peer that does not speak HTTP, web pages instead of the
  API) is an `EndpointError` at once, never retried: waiting does not fix a URL. Failures
  name the URL tried, without its user-info or query.
- Each HTTP exchange can be reported to `on_call` as a `CallRecord` (route template, status,
  duration): no id, name or secret in it.
- The key travels only in the `Authorization` header. It is never put in an error, a log
  line or `repr`, and it is refused over plain http to anything but loopback, and when it
  holds a line break or another character that a header value cannot carry.
- Every answer is checked against its declared model (`answers.py`) and read within a cap
  (`httpclient.py`): a job's result alone may be larger than any other answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from sprunner.api import httpclient, parse, parse_jobs, routes
from sprunner.api.calls import CallRecord, parse_retry_after
from sprunner.api.errors import (
    AmbiguousApiError,
    RateLimitedError,
    ServerError,
    TransientApiError,
    TransportError,
    UnreachableError,
)
from sprunner.api.exchange import Exchange, NotSent
from sprunner.api.limiter import RateLimiter
from sprunner.api.models import CollectionRef, JobPage, Run, WriteResult
from sprunner.api.routes import COLLECTIONS, OrderBy, OrderDir
from sprunner.api.transport import is_loopback, safe_url
from sprunner.api.window import CallWindow
from sprunner.errors import UsageError
from sprunner.util.backoff import API_BACKOFF, Backoff, retry_call

__all__ = ["ApiClient", "CallRecord", "is_loopback", "parse_retry_after"]


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
        on_call: Callable[[CallRecord], None] | None = None,
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
        if api_key:
            httpclient.check_key(api_key)
        self.base_url = base_url
        self._has_key = bool(api_key)
        # max_attempts / max_backoff override the backoff's attempts / cap.
        self._backoff = dataclasses.replace(
            backoff,
            attempts=max(1, backoff.attempts if max_attempts is None else max_attempts),
            cap=backoff.cap if max_backoff is None else max_backoff,
        )
        headers = {"Accept": "application/json", "User-Agent": "sprunner"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._exchange = Exchange(
            base_url=base_url,
            headers=headers,
            transport=transport,
            timeout=timeout,
            limiter=limiter or RateLimiter(),
            # `parallel` is the cap; 429s, 5xx and transport failures cut below it (window.py).
            window=CallWindow(max(1, parallel)),
            retry_after_cap=self._backoff.cap,
            scrub_key=api_key or None,
            on_call=on_call,
        )

    @property
    def limiter(self) -> RateLimiter:
        return self._exchange.limiter

    @property
    def window(self) -> CallWindow:
        """The bound on calls in flight (its `size` now, its `cap`: `--parallel`)."""
        return self._exchange.window

    @property
    def calls(self) -> int:
        """HTTP exchanges sent so far, retries included."""
        return self._exchange.calls

    @property
    def rate_limited(self) -> int:
        """Answers that were 429 so far."""
        return self._exchange.rate_limited

    @property
    def _reached(self) -> bool:
        return self._exchange.reached

    def __repr__(self) -> str:
        key = "set" if self._has_key else "none"
        return f"ApiClient(base_url={safe_url(self.base_url, '')!r}, api_key=<{key}>)"

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._exchange.aclose()

    # --- the calls of SPEC §1 -------------------------------------------------------------

    async def list_collections(self, *, name: str | None = None) -> list[CollectionRef]:
        params = {"name": name} if name is not None else None
        answer = await self._idempotent("GET", COLLECTIONS, "list collections", name, params=params)
        return parse.collection_refs(answer)

    async def get_collection(self, collection_id: str, *, name: str | None = None) -> CollectionRef:
        answer = await self._idempotent(
            "GET", routes.collection(collection_id), "get collection", name or collection_id
        )
        return parse.collection_ref(answer, answer.data)

    async def create_collection(
        self, name: str, requests: Sequence[Mapping[str, Any]], *, idempotency_key: str
    ) -> WriteResult:
        answer = await self._post(
            COLLECTIONS,
            "create collection",
            name,
            body=routes.collection_body(name, requests),
            headers={"Idempotency-Key": idempotency_key},
        )
        return parse.write_result(answer)

    async def update_collection(
        self, collection_id: str, name: str, requests: Sequence[Mapping[str, Any]]
    ) -> WriteResult:
        answer = await self._idempotent(
            "PUT",
            routes.collection(collection_id),
            "update collection",
            name,
            body=routes.collection_body(name, requests),
        )
        return parse.write_result(answer)

    async def delete_collection(self, collection_id: str, *, name: str | None = None) -> None:
        await self._idempotent(
            "DELETE",
            routes.collection(collection_id),
            "delete collection",
            name or collection_id,
            empty_ok=True,
        )

    async def start_run(self, collection_id: str, *, name: str | None = None) -> Run:
        answer = await self._post(
            f"{routes.collection(collection_id)}/run", "start run", name or collection_id, body=None
        )
        return parse.run(answer, answer.data, collection_id=collection_id)

    async def get_run(self, collection_id: str, run_id: str, *, name: str | None = None) -> Run:
        answer = await self._idempotent(
            "GET",
            routes.run(collection_id, run_id),
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
            "GET",
            f"{routes.collection(collection_id)}/runs",
            "list runs",
            name or collection_id,
            params=params,
        )
        return parse.runs(answer, collection_id=collection_id)

    async def list_jobs(
        self,
        collection_id: str,
        run_id: str,
        *,
        name: str,
        cursor: str | None = None,
        limit: int | None = None,
        status_filter: Sequence[str] = (),
        order_by: OrderBy | None = None,
        order_dir: OrderDir | None = None,
        since_completed_at: str | None = None,
        include_results: bool = False,
    ) -> JobPage:
        """One page of a run's jobs. `limit` is 1..1000; with `include_results` pages hold at
        most 100 (a larger `limit` is capped). Raises ValueError for a bad argument."""
        params, page = routes.jobs_query(
            cursor=cursor,
            limit=limit,
            status_filter=status_filter,
            order_by=order_by,
            order_dir=order_dir,
            since_completed_at=since_completed_at,
            include_results=include_results,
        )
        answer = await self._idempotent(
            "GET", routes.jobs(collection_id, run_id), "list jobs", name, params=params
        )
        return parse_jobs.job_page(
            answer, run_id=run_id, collection_id=collection_id, cursor=cursor, limit=page
        )

    async def get_job_result(
        self, collection_id: str, run_id: str, job_id: str, *, name: str
    ) -> Mapping[str, Any]:
        """The scrape body of one job. A documented 404 is a `ResultUnavailableError`."""
        answer = await self._idempotent(
            "GET",
            routes.result(collection_id, run_id, job_id),
            "get job result",
            name,
            cap=httpclient.MAX_RESULT,  # a scraped page can be 100 MB
        )
        return parse_jobs.result_body(answer)

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
        cap: int | None = None,  # httpclient.MAX_ANSWER
    ) -> parse.Answer:
        try:
            return await self._attempts(
                lambda e: isinstance(e, TransientApiError),
                lambda: self._exchange.send(
                    method,
                    path,
                    call,
                    collection,
                    params=params,
                    body=body,
                    empty_ok=empty_ok,
                    cap=cap,
                ),
            )
        except TransportError as error:
            if not self._reached:
                # Not one answer, ever: the API is unusable, not just this collection.
                raise UnreachableError(
                    f"cannot reach the API ({error.reason})",
                    call=call,
                    collection=collection,
                    detail=error.detail,
                ) from error
            raise

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
            return await self._attempts(
                lambda e: isinstance(e, (RateLimitedError, NotSent)),
                lambda: self._exchange.send(
                    "POST", path, call, collection, body=body, headers=headers
                ),
            )
        except NotSent as error:
            raise TransportError(
                error.reason, call=call, collection=collection, detail=error.detail
            ) from error
        except (ServerError, TransportError) as error:
            raise AmbiguousApiError(error) from error

    async def _attempts(
        self,
        retry_on: Callable[[BaseException], bool],
        send: Callable[[], Awaitable[parse.Answer]],
    ) -> parse.Answer:
        """`send()`, and again after each failure `retry_on` accepts (`backoff.retry_call`)."""
        return await retry_call(send, backoff=self._backoff, retry_on=retry_on, wait_hint=_hint)


def _hint(error: BaseException) -> float | None:
    """The server's own word on when to come back: a 429's `Retry-After`."""
    return error.retry_after if isinstance(error, RateLimitedError) else None
