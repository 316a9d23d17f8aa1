"""The client's direct road to the API (api/direct.py): the same requests on the wire as
httpx's client would send, the same answers back, and httpx's road where a proxy is set."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib

import httpx
import pytest

from sprunner.api import direct
from sprunner.api.wire import Wire


async def _capture(answer: bytes, seen: list[bytes], port: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        seen.append(head + (await reader.readexactly(length) if length else b""))
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port.append(server.sockets[0].getsockname()[1])
    return server


def _answer(body: bytes, *headers: bytes) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def _exchange(answer: bytes, base: str, **send: object) -> tuple[httpx.Response, bytes]:
    async def go() -> tuple[httpx.Response, bytes]:
        seen: list[bytes] = []
        port: list[int] = []
        server = await _capture(answer, seen, port)
        try:
            sender = direct.Direct(
                Wire(), f"http://127.0.0.1:{port[0]}{base}", {"Authorization": "Bearer k"}, 5.0
            )
            response = await sender.send(**send)  # type: ignore[arg-type]
        finally:
            server.close()
            await server.wait_closed()
        return response, seen[0]

    return asyncio.run(go())


def test_a_post_goes_under_the_base_path_with_its_query_headers_and_json() -> None:
    body = direct.encode_json({"name": "shop é", "requests": [{"url": "https://a/1"}]})
    response, sent = _exchange(
        _answer(b'{"id": "c1"}', b"Content-Type: application/json"),
        "/prefix/",
        method="POST",
        path="/v1/async/collections",
        params={"name": "a b&c"},
        body=body,
        headers={"Idempotency-Key": "abc", "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and json.loads(response.content) == {"id": "c1"}
    head, _, payload = sent.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /prefix/v1/async/collections?name=a%20b%26c HTTP/1.1"
    for header in (b"Authorization: Bearer k", b"Idempotency-Key: abc", b"Host: 127.0.0.1:"):
        assert any(line.startswith(header) for line in lines), (header, lines)
    assert payload == body and b"Content-Length: %d" % len(body) in lines
    assert payload.decode() == '{"name":"shop é","requests":[{"url":"https://a/1"}]}'


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        (b"gzip", gzip.compress),
        (b"deflate", zlib.compress),
        (b"deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
def test_compressed_answers_are_decoded_once(encoding: bytes, pack: object) -> None:
    packed = pack(b'{"items": [1, 2, 3]}')  # type: ignore[operator]
    response, _ = _exchange(
        _answer(packed, b"Content-Encoding: " + encoding),
        "",
        method="GET",
        path="/v1/x",
        params=None,
        body=None,
        headers=None,
    )
    assert json.loads(response.content) == {"items": [1, 2, 3]}


def test_a_proxy_in_the_environment_sends_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        for variant in (name, name.lower()):
            monkeypatch.delenv(variant, raising=False)
    assert direct.usable("https://api.example.com")
    assert not direct.usable("https://user:pw@api.example.com")
    assert not direct.usable("https://api.example.com/?tenant=1")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert not direct.usable("https://api.example.com")
    assert direct.usable("http://127.0.0.1:8080")  # the https proxy is not for http
    monkeypatch.setenv("NO_PROXY", "api.example.com")
    assert direct.usable("https://api.example.com")


def test_a_reply_reads_as_the_httpx_response_it_stands_for() -> None:
    """Exchange reads status, headers (any case; repeated ones joined) and the body."""
    raw = [
        (b"Content-Type", b"text/plain; charset=latin-1"),
        (b"X-RateLimit-Limit", b"25"),
        (b"Set-Cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    content = "café".encode("latin-1")
    reply = direct.Reply(429, raw, content)
    response = httpx.Response(429, headers=raw, content=content)
    for name in ("content-type", "X-RATELIMIT-LIMIT", "Set-Cookie", "Retry-After"):
        assert reply.headers.get(name) == response.headers.get(name)
    assert (reply.status_code, reply.content, reply.text) == (429, content, response.text)
    assert reply.text == "café"
