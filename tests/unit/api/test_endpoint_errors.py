"""A wrong API URL fails at once with a clear message; a passing fault is still retried.

These depend on what real sockets and a real TLS stack do, so they run against small
servers on loopback: a TLS server, a plain HTTP server, a server that speaks another
protocol, and a closed port. Each test bounds its time: before the fix, these failures
were retried with backoff as if the network had hiccupped.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from sprunner.api.client import ApiClient
from sprunner.api.errors import EndpointError, NotFoundError, UnreachableError
from sprunner.errors import EXIT_API_UNUSABLE, exit_code_for

from .helpers import KEY, Script, client, reply, run

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON_LIST = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]"
# Slow retries, so that a test that retries at all takes far longer than one that fails at once.
# Retrying at all waits at least 0.25 + 0.5 + 1 + 2 + 2 s; failing at once takes well under 4 s
# even on a loaded machine (at most one probe of the port).
RETRYING = {"max_attempts": 6, "max_backoff": 4.0, "timeout": 5.0}
AT_ONCE = 4.0


BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def _closing(handler: Handler) -> Handler:
    """Servers whose peer may vanish mid-exchange: close quietly whatever happens."""

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    return wrapped


@_closing
async def _answer_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Like any HTTP server: bytes that are not a request (a TLS hello) get a 400.
    first = await reader.read(4096)
    if not first[:1].isalpha():
        writer.write(BAD_REQUEST)
        await writer.drain()
        return
    while b"\r\n\r\n" not in first:
        first += await reader.read(4096)
    writer.write(JSON_LIST)
    await writer.drain()


@_closing
async def _speak_ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Like sshd: a banner first, then a complaint about the request, then it hangs up.
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await writer.drain()
    await reader.read(100)
    writer.write(b"Invalid SSH identification string.\r\n")
    await writer.drain()


async def _call(base_url: str, **kw: Any) -> tuple[BaseException, float]:
    """List collections against `base_url`; the error it ends with and how long it took.
    The client is the production one (httpx's own transport), as every test here uses."""
    api = ApiClient(base_url=base_url, api_key=KEY, **{**RETRYING, **kw})
    began = time.monotonic()
    try:
        async with api:
            await api.list_collections()
    except Exception as error:
        return error, time.monotonic() - began
    raise AssertionError("the call should have failed")


async def _with_server(
    handler: Handler, ssl_context: ssl.SSLContext | None, test: Callable[[int], Awaitable[None]]
) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    try:
        await test(port)
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust the test CA the way a user would: SSL_CERT_FILE (httpx reads it)."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))


def _assert_fails_at_once(error: BaseException, took: float, *words: str) -> None:
    assert isinstance(error, EndpointError), repr(error)
    assert exit_code_for(error) == EXIT_API_UNUSABLE
    assert took < AT_ONCE, f"took {took:.1f}s: it was retried"
    message = str(error)
    for word in words:
        assert word in message, message
    assert KEY not in message


def test_http_to_a_tls_port_says_use_https(ca: trustme.CA) -> None:
    async def test(port: int) -> None:
        error, took = await _call(f"http://127.0.0.1:{port}")
        _assert_fails_at_once(error, took, "speaks TLS", "https://", f"127.0.0.1:{port}")

    run(_with_server(_answer_json, _server_tls(ca), test))


@pytest.mark.usefixtures("trusted")
def test_https_to_a_plain_http_port_says_the_port_does_not_speak_tls() -> None:
    async def test(port: int) -> None:
        error, took = await _call(f"https://127.0.0.1:{port}")
        _assert_fails_at_once(error, took, "does not speak TLS", f"https://127.0.0.1:{port}")

    run(_with_server(_answer_json, None, test))


def test_a_certificate_that_is_not_trusted_is_refused_at_once(ca: trustme.CA) -> None:
    async def test(port: int) -> None:
        error, took = await _call(f"https://127.0.0.1:{port}")  # the system store, not our CA
        _assert_fails_at_once(error, took, "certificate")

    run(_with_server(_answer_json, _server_tls(ca), test))


def test_a_port_that_speaks_another_protocol_is_a_wrong_port() -> None:
    async def test(port: int) -> None:
        error, took = await _call(f"http://127.0.0.1:{port}")
        _assert_fails_at_once(error, took, "does not speak HTTP", "wrong port")

    run(_with_server(_speak_ssh, None, test))


@pytest.mark.usefixtures("trusted")
def test_the_right_tls_setup_works(ca: trustme.CA) -> None:
    async def test(port: int) -> None:
        api = ApiClient(base_url=f"https://localhost:{port}", api_key=KEY)
        async with api:
            assert await api.list_collections() == []

    run(_with_server(_answer_json, _server_tls(ca), test))


def test_a_closed_port_is_unreachable_and_names_the_url_without_secrets() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nobody listens
    error, _ = run(
        _call(f"http://user:pw@127.0.0.1:{port}/base?token=abc", max_attempts=2, max_backoff=0.01)
    )
    assert isinstance(error, UnreachableError)
    message = str(error)
    assert f"http://127.0.0.1:{port}/base/v1/async/collections" in message
    assert "pw" not in message and "abc" not in message and KEY not in message


def test_a_silent_hang_up_from_a_real_http_server_is_still_retried() -> None:
    """The probe tells a wrong port from a dropped connection: this one speaks HTTP."""
    hang_ups = 0

    @_closing
    async def hang_up_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hang_ups
        request = await reader.readuntil(b"\r\n\r\n")
        if request.startswith(b"GET") and hang_ups == 0:
            hang_ups += 1
            return
        writer.write(JSON_LIST)
        await writer.drain()

    async def test(port: int) -> None:
        api = ApiClient(base_url=f"http://127.0.0.1:{port}", api_key=KEY, max_backoff=0.01)
        async with api:
            assert await api.list_collections() == []
        assert api.calls == 2

    run(_with_server(hang_up_once, None, test))


def test_a_wrong_base_url_answering_an_html_404_is_summarised_not_printed() -> None:
    page = "<!DOCTYPE html><html><head><title>Not Found</title></head>" + "<p>x</p>" * 500
    script = Script([reply(404, page, **{"Content-Type": "text/html; charset=utf-8"})])

    async def go() -> None:
        async with client(script) as api:
            await api.list_collections()

    with pytest.raises(EndpointError) as caught:
        run(go())
    message = str(caught.value)
    assert "<" not in message and "Not Found" not in message
    assert "HTTP 404" in message and "text/html" in message
    assert "does not look like the API" in message and "API URL" in message
    assert len(script.seen) == 1 and exit_code_for(caught.value) == EXIT_API_UNUSABLE


def test_an_html_404_after_the_api_answered_is_a_plain_not_found_summarised() -> None:
    page = "<html><body>" + "gone " * 200 + "</body></html>"
    script = Script([reply(200, []), reply(404, page, **{"Content-Type": "text/html"})])

    async def go() -> None:
        async with client(script) as api:
            await api.list_collections()
            await api.get_collection("c1", name="shop")

    with pytest.raises(NotFoundError) as caught:
        run(go())
    assert not isinstance(caught.value, EndpointError)
    assert "<" not in str(caught.value) and "text/html" in str(caught.value)


def test_a_proxy_error_page_before_the_api_answered_is_still_retried() -> None:
    bad_gateway = reply(502, "<html>502 Bad Gateway</html>", **{"Content-Type": "text/html"})
    script = Script([bad_gateway, reply(200, [])])

    async def go() -> None:
        async with client(script) as api:
            assert await api.list_collections() == []

    run(go())
    assert len(script.seen) == 2
