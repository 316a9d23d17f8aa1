"""The HTTP boundary over real sockets (issue #23): what httpx guards, sprunner inherits.

Each server here is a few lines of asyncio on loopback answering raw bytes, so that the
client under test is exactly the production one (httpx's own transport), not a mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from sprunner.api.client import ApiClient
from sprunner.api.errors import ApiError, BadAnswerError, TransportError
from sprunner.errors import EXIT_API_UNUSABLE, EXIT_FAILED, EXIT_INVALID, UsageError, exit_code_for

from .helpers import KEY, run

QUICK = {"max_attempts": 2, "max_backoff": 0.01, "timeout": 5.0}
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answering(
    raw: bytes, seen: list[bytes] | None = None, *, first: bytes = b"", close: bool = False
) -> Handler:
    """Answer every request with `raw` (the very first one with `first`, when given); with
    `close`, hang up after `raw` (a truncated answer is not left waiting for the timeout)."""
    answered = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                if seen is not None:
                    seen.append(request)
                now_raw = not (first and not answered)
                writer.write(raw if now_raw else first)
                answered.append(request)
                if close and now_raw:
                    await writer.drain()
                    break
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]"
CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "raw",
    [
        CHUNKED + b"-2\r\n[]\r\n0\r\n\r\n",
        CHUNKED + b"0x2\r\n[]\r\n0\r\n\r\n",
        CHUNKED + b"0_0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: xchunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n",
        b"HTTP/1.1 20000000000000000000 OK\r\ncontent-length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nx-a: a\x00b\r\ncontent-length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nx-a: a\rb\r\ncontent-length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\ncontent-length: -2\r\n\r\n[]",
    ],
    ids=[
        *("negative-chunk", "0x2", "0_0", "xchunked", "status-20-digits", "nul", "bare-cr"),
        *("bad-gzip", "truncated", "negative-length"),
    ],
)
def test_malformed_http_is_an_api_error_with_its_exit_code(raw: bytes) -> None:
    async def go(first: bytes) -> BaseException:
        handler = answering(raw, first=first, close=True)
        async with serving(handler) as url, ApiClient(base_url=url, api_key=KEY, **QUICK) as api:
            if first:
                assert await api.list_collections() == []
            with pytest.raises(ApiError) as caught:
                await api.get_collection("c1", name="shop")
            return caught.value

    # The first answer ever: the API cannot be used (exit 3). After it answered once: that
    # collection's call failed, retried first (exit 1). Never a ValueError, never exit 70.
    first_contact = run(go(b""))
    assert exit_code_for(first_contact) == EXIT_API_UNUSABLE, repr(first_contact)
    later = run(go(OK))
    assert isinstance(later, TransportError) and exit_code_for(later) == EXIT_FAILED, repr(later)
    assert "shop" in str(later) and KEY not in str(later) + str(first_contact)


def test_more_than_1024_open_files_do_not_break_calls() -> None:
    """Issue #23: ~1,100 results files open made every call fail in select()."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit of open files is {hard}")
    resource.setrlimit(
        resource.RLIMIT_NOFILE,
        (max(soft, 1200) if hard == resource.RLIM_INFINITY else max(soft, min(hard, 4096)), hard),
    )
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:

        async def go() -> None:
            async with serving(answering(OK)) as url, ApiClient(base_url=url, api_key=KEY) as api:
                for _ in range(5):  # kept-alive connections are checked before reuse
                    assert await api.list_collections() == []

        run(go())
        assert max(opened) > 1024
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize(
    "key", ["abc\r\nX-Evil: 1", "abc\ndef", "tab\there", "caf\u00e9", "nul\x00"]
)
def test_a_key_with_a_control_character_is_refused_before_anything_is_sent(key: str) -> None:
    seen: list[bytes] = []

    async def go() -> None:
        async with serving(answering(OK, seen)) as url:
            with pytest.raises(UsageError) as caught:
                ApiClient(base_url=url, api_key=key)
            assert exit_code_for(caught.value) == EXIT_INVALID
            assert key not in str(caught.value) and "API key" in str(caught.value)

    run(go())
    assert seen == []


def test_a_missing_ssl_cert_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(UsageError) as caught:
        ApiClient(base_url="https://api.example.test", api_key=KEY)
    assert "SSL_CERT_FILE" in str(caught.value) and exit_code_for(caught.value) == EXIT_INVALID


def test_http_proxy_is_used_and_no_proxy_bypasses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY / NO_PROXY as httpx documents them (the API here is the proxy itself)."""
    proxied: list[bytes] = []

    async def go() -> None:
        async with serving(answering(OK, proxied)) as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy)
            async with ApiClient(base_url="http://127.0.0.1:9", api_key=KEY, **QUICK) as api:
                assert await api.list_collections() == []
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            async with ApiClient(base_url="http://127.0.0.1:9", api_key=KEY, **QUICK) as api:
                with pytest.raises(TransportError):  # straight to port 9: nobody there
                    await api.list_collections()

    run(go())
    assert len(proxied) == 1
    assert proxied[0].startswith(b"GET http://127.0.0.1:9/v1/async/collections HTTP/1.1")


def test_an_answer_over_its_cap_is_a_bad_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from sprunner.api import httpclient

    monkeypatch.setattr(httpclient, "MAX_ANSWER", 1000)
    big = b"[" + b"1," * 2000 + b"1]"
    raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    streamed = raw + b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    declared = raw + b"content-length: %d\r\n\r\n%s" % (len(big), big)

    async def go(answer: bytes) -> None:
        async with serving(answering(answer)) as url, ApiClient(base_url=url, api_key=KEY) as api:
            with pytest.raises(BadAnswerError, match="over 1000 bytes"):
                await api.list_collections()

    run(go(streamed))
    run(go(declared))
