"""sprunner's HTTP/1.1 transport (api/wire.py) against small real servers on loopback."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import httpx
import pytest

from sprunner.api.wire import Wire

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _request_of(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The request line and body of the next request on a connection (None at its end)."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = await reader.read(1)
        if not data:
            return None
        head += data
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return head.split(b"\r\n", 1)[0], body


def _serve(answers: list[bytes], connections: list[int], *, close: bool = False) -> Handler:
    """A server that answers each request with the next of `answers` (then hangs up if
    `close`), counting the connections it accepts."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while (request := await _request_of(reader)) is not None:
                answer = answers.pop(0)
                length = b"%d" % len(request[1])
                writer.write(answer.replace(b"{length}", length).replace(b"{body}", request[1]))
                await writer.drain()
                if close:
                    break
        finally:
            writer.close()

    return handle


async def _with(handler: Handler, test: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", transport=Wire(), timeout=5
        ) as client:
            await test(client)
    finally:
        server.close()
        await server.wait_closed()


def _ok(body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_one_connection_carries_many_exchanges_and_bodies_are_sent() -> None:
    connections: list[int] = []

    async def test(client: httpx.AsyncClient) -> None:
        for i in range(5):
            answer = await client.post("/echo", json={"i": i})
            assert (answer.status_code, answer.json()) == (200, {"i": i})
        assert (await client.get("/x")).text == "plain"

    answers = [b"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n{body}" for _ in range(5)]
    answers.append(_ok(b"plain"))
    asyncio.run(_with(_serve(answers, connections), test))
    assert len(connections) == 1


def test_chunked_gzip_and_empty_answers_are_read_whole() -> None:
    connections: list[int] = []
    packed = gzip.compress(b'{"a": 1}')
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    answers = [
        chunked,
        _ok(packed, b"Content-Encoding: gzip", b"Content-Type: application/json"),
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(b"after"),
    ]

    async def test(client: httpx.AsyncClient) -> None:
        assert (await client.get("/a")).text == "abcdefg"
        assert (await client.get("/b")).json() == {"a": 1}
        empty = await client.delete("/c")
        assert (empty.status_code, empty.content) == (204, b"")
        assert (await client.get("/d")).text == "after"

    asyncio.run(_with(_serve(answers, connections), test))
    assert len(connections) == 1


def test_a_connection_the_server_closed_is_not_reused() -> None:
    connections: list[int] = []
    answers = [_ok(b"one"), _ok(b"two"), b"HTTP/1.0 200 OK\r\n\r\nto the end", _ok(b"four")]

    async def test(client: httpx.AsyncClient) -> None:
        assert (await client.get("/1")).text == "one"
        await asyncio.sleep(0.05)  # the server's hang-up arrives while the connection idles
        assert (await client.get("/2")).text == "two"
        assert (await client.get("/3")).text == "to the end"  # framed by the connection's end
        assert (await client.get("/4")).text == "four"

    asyncio.run(_with(_serve(answers, connections, close=True), test))
    assert len(connections) == 4


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "Server disconnected without sending a response"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "Server disconnected without sending a response"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "illegal status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "incomplete"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "incomplete"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "incomplete"),
    ],
    ids=["nothing", "not-http", "bad-status", "short-body", "short-chunk", "short-head"],
)
def test_broken_answers_are_protocol_errors_that_say_what_broke(
    answer: bytes, message: str
) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_of(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def test(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await client.get("/")

    asyncio.run(_with(handle, test))


def test_timeouts_and_refusals_are_httpx_errors() -> None:
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_of(reader)
        await reader.read()  # until the client gives up and hangs up
        writer.close()
        hung_up.set()

    async def test(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/", timeout=0.2)
        await asyncio.wait_for(hung_up.wait(), 5)  # the client closed what timed out

    asyncio.run(_with(silent, test))

    async def refused() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with httpx.AsyncClient(transport=Wire()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")

    asyncio.run(refused())
