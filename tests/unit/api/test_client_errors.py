"""Error mapping, retry rules, the ambiguous POST, reachability, and the key's secrecy."""

from __future__ import annotations

import httpx
import pytest

from sprunner.api.client import ApiClient, parse_retry_after
from sprunner.api.errors import (
    AmbiguousApiError,
    ApiError,
    ApiUnusableError,
    AuthenticationError,
    BadAnswerError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    QuotaExceededError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnreachableError,
)
from sprunner.errors import EXIT_API_UNUSABLE, EXIT_FAILED, UsageError, exit_code_for
from sprunner.util.backoff import Backoff

from .helpers import KEY, RUN, Script, client, reply, run

OK_LIST = reply(200, [])
WRITE = {"id": "c1", "name": "a", "message": "ok"}


def _get(script: Script, **kw: object) -> None:
    async def go() -> None:
        async with client(script, **kw) as api:  # type: ignore[arg-type]
            await api.get_collection("c1", name="shop")

    run(go())


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (401, {"detail": "bad key"}, AuthenticationError, EXIT_API_UNUSABLE),
        (403, {"detail": "proxy country not approved"}, ForbiddenError, EXIT_FAILED),
        (404, {"message": "no such collection"}, NotFoundError, EXIT_FAILED),
        (400, {"detail": "bad"}, InvalidRequestError, EXIT_FAILED),
        (422, {"detail": [{"loc": ["body", "url"], "msg": "blocked"}]}, InvalidRequestError, 1),
        (429, {"detail": "Monthly quota exceeded"}, QuotaExceededError, EXIT_API_UNUSABLE),
        (418, "teapot", ApiError, EXIT_FAILED),
    ],
)
def test_permanent_statuses_map_to_classes_and_are_not_retried(
    status: int, body: object, error: type[ApiError], code: int
) -> None:
    script = Script([reply(status, body)])
    with pytest.raises(error) as caught:
        _get(script)
    assert len(script.seen) == 1, "a permanent error must not be retried"
    message = str(caught.value)
    assert "get collection" in message and "'shop'" in message and f"HTTP {status}" in message
    assert exit_code_for(caught.value) == code


def test_detail_is_shown_and_long_bodies_are_cut() -> None:
    script = Script([reply(403, {"detail": "x" * 5000})])
    with pytest.raises(ForbiddenError) as caught:
        _get(script)
    assert len(str(caught.value)) < 500 and "more characters" in str(caught.value)


@pytest.mark.parametrize(
    "failure",
    [reply(500, {"detail": "boom"}), reply(503, "down"), httpx.ReadTimeout("slow"), reply(429, {})],
)
def test_idempotent_calls_retry_transient_failures(failure: httpx.Response | Exception) -> None:
    script = Script([failure, failure, reply(200, {"id": "c1", "name": "a"})])
    _get(script)
    assert len(script.seen) == 3


def test_idempotent_retries_stop_after_max_attempts() -> None:
    script = Script([reply(503, {"detail": "down"})])
    with pytest.raises(ServerError):
        _get(script, max_attempts=3)
    assert len(script.seen) == 3


def test_put_and_delete_are_retried() -> None:
    script = Script([reply(502, "bad gateway"), reply(200, WRITE), reply(500, ""), reply(200, b"")])

    async def go() -> None:
        async with client(script) as api:
            await api.update_collection("c1", "a", [])
            await api.delete_collection("c1")

    run(go())
    assert [r.method for r in script.seen] == ["PUT", "PUT", "DELETE", "DELETE"]


@pytest.mark.parametrize(
    "failure",
    [reply(500, {"detail": "boom"}), httpx.ReadTimeout("t"), httpx.RemoteProtocolError("x")],
)
def test_post_failures_that_may_have_worked_are_ambiguous_and_not_retried(
    failure: httpx.Response | Exception,
) -> None:
    script = Script([OK_LIST, failure, reply(201, WRITE)])

    async def go() -> None:
        async with client(script) as api:
            await api.list_collections()
            await api.create_collection("a", [], idempotency_key="k")

    with pytest.raises(AmbiguousApiError) as caught:
        run(go())
    assert len(script.seen) == 2
    assert isinstance(caught.value.cause, (ServerError, TransportError))
    assert "create collection" in str(caught.value) and "'a'" in str(caught.value)


def test_start_run_on_5xx_is_ambiguous() -> None:
    script = Script([reply(503, {"detail": "busy"}), reply(201, RUN)])

    async def go() -> None:
        async with client(script) as api:
            await api.start_run("c1", name="shop")

    with pytest.raises(AmbiguousApiError, match="start run"):
        run(go())
    assert len(script.seen) == 1


def test_post_retries_429_and_connection_refused_since_nothing_was_done() -> None:
    script = Script(
        [
            reply(429, {"detail": "slow down"}, **{"Retry-After": "0"}),
            httpx.ConnectError("refused"),
            reply(201, WRITE),
        ]
    )

    async def go() -> None:
        async with client(script) as api:
            await api.create_collection("a", [], idempotency_key="k")
            assert api.rate_limited == 1 and api.calls == 3

    run(go())
    assert [r.headers["Idempotency-Key"] for r in script.seen] == ["k", "k", "k"]


def test_post_429_exhausted_is_rate_limited_not_ambiguous() -> None:
    script = Script([reply(429, {"detail": "slow down"}, **{"Retry-After": "0"})])

    async def go() -> None:
        async with client(script, max_attempts=2) as api:
            await api.start_run("c1")

    with pytest.raises(RateLimitedError) as caught:
        run(go())
    assert caught.value.retry_after == 0.0


def test_quota_429_is_never_retried_even_on_post() -> None:
    script = Script([reply(429, {"detail": "quota exhausted for this month"})])

    async def go() -> None:
        async with client(script) as api:
            await api.start_run("c1")

    with pytest.raises(QuotaExceededError):
        run(go())
    assert len(script.seen) == 1


def test_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    script = Script([reply(429, {}, **{"Retry-After": "7"}), reply(200, {"id": "c1", "name": "a"})])

    api = client(script, max_backoff=60.0)
    real_after = Backoff.after
    monkeypatch.setattr(
        Backoff, "after", lambda self, n, hint: waits.append(real_after(self, n, hint)) or 0.0
    )
    monkeypatch.setattr(api.limiter, "on_rate_limited", lambda retry_after: None)

    async def go() -> None:
        async with api:
            await api.get_collection("c1")

    run(go())
    assert len(waits) == 1 and 7.0 <= waits[0] <= 7.8


def test_parse_retry_after_accepts_seconds_and_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-1") == 0.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_unreachable_when_no_call_ever_got_an_answer() -> None:
    script = Script([httpx.ConnectError("refused")])

    async def go() -> None:
        async with client(script, max_attempts=2) as api:
            await api.list_collections()

    with pytest.raises(UnreachableError) as caught:
        run(go())
    assert isinstance(caught.value, ApiUnusableError) and exit_code_for(caught.value) == 3
    assert len(script.seen) == 2


def test_transport_error_after_the_api_answered_once_is_not_unreachable() -> None:
    script = Script([OK_LIST, httpx.ReadError("reset")])

    async def go() -> None:
        async with client(script, max_attempts=2) as api:
            await api.list_collections()
            await api.list_collections()

    with pytest.raises(TransportError) as caught:
        run(go())
    assert not isinstance(caught.value, UnreachableError)


def test_key_never_appears_in_errors_or_repr() -> None:
    def echo_key(request: httpx.Request) -> httpx.Response:
        # A hostile or buggy server echoing the header must not leak it through us either.
        return reply(500, {"detail": f"got {request.headers['Authorization']}"})

    failures: list[BaseException] = []
    answers: list[object] = [reply(401, {"detail": "bad"}), httpx.ConnectError("refused")]
    answers += [reply(200, f"not json {KEY}"), echo_key]
    for answer in answers:
        script = Script([answer])  # type: ignore[list-item]
        api = client(script, max_attempts=1)
        assert KEY not in repr(api) and KEY not in str(api)
        with pytest.raises(ApiError) as caught:
            run(_close_after(api, api.list_collections()))
        failures.append(caught.value)
    for failure in failures:
        text = f"{failure} {failure!r} {failure.args} {failure.__cause__}"
        assert KEY not in text


async def _close_after(api: ApiClient, coro: object) -> object:
    async with api:
        return await coro  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://api.example.com", True),
        ("http://10.0.0.1:8080", True),
        ("http://127.0.0.1:8080", False),
        ("http://127.5.0.1", False),
        ("http://localhost:9", False),
        ("http://[::1]:8080", False),
        ("https://api.example.com", False),
    ],
)
def test_key_is_refused_over_plain_http_except_loopback(url: str, refused: bool) -> None:
    if refused:
        with pytest.raises(UsageError, match="plain http") as caught:
            ApiClient(base_url=url, api_key=KEY)
        assert KEY not in str(caught.value)
    else:
        run(ApiClient(base_url=url, api_key=KEY).aclose())
    # Without a key there is nothing to protect.
    run(ApiClient(base_url=url, api_key=None).aclose())


def test_bad_base_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        ApiClient(base_url="ftp://x", api_key=None)


def test_bad_answer_to_post_is_permanent_not_ambiguous() -> None:
    script = Script([reply(201, {"nope": 1})])

    async def go() -> None:
        async with client(script) as api:
            await api.create_collection("a", [], idempotency_key="k")

    with pytest.raises(BadAnswerError):
        run(go())


def test_each_retry_waits_longer_until_the_attempts_are_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four 503s then an answer: four waits after attempts 1 to 4, on doubling ceilings."""
    delays: list[tuple[int, float]] = []
    script = Script([reply(503, {})] * 4 + [reply(200, {"id": "c1", "name": "a"})])
    api = client(script, max_attempts=5, max_backoff=60.0)
    real_after = Backoff.after
    monkeypatch.setattr(
        Backoff, "after", lambda self, n, hint: delays.append((n, real_after(self, n, hint))) or 0.0
    )

    async def go() -> None:
        async with api:
            await api.get_collection("c1")

    run(go())
    assert [n for n, _ in delays] == [1, 2, 3, 4] and len(script.seen) == 5
    base = api._backoff.base
    assert all(base * 2 ** (n - 2) <= d <= base * 2 ** (n - 1) for n, d in delays)


def test_the_last_attempt_s_error_is_raised_when_all_are_spent() -> None:
    script = Script([reply(503, {})] * 3)

    async def go() -> None:
        async with client(script, max_attempts=3, max_backoff=0.01) as api:
            await api.get_collection("c1")

    with pytest.raises(ServerError):
        run(go())
    assert len(script.seen) == 3
