"""The HTTP/1.1 connection pool that the API client sends through (an httpx transport).

Why not httpx's default transport (httpcore): for every request its pool walks all of its
connections, asking each whether it expired (a `getpeername` system call each time) and
taking anyio locks that look up the async library; with 64 calls in flight that was about
3 ms of CPU a call, the largest cost of an apply at thousands of collections. sprunner
needs little of HTTP: a few hosts, small JSON bodies, keep-alive, answers framed by
Content-Length, chunks or the end of the connection, and TLS. httpx stays the client
(URLs, headers, content decoding, its error classes); this is only the part that moves
bytes. Proxies named by the environment still go through httpx's own transports.

Invariants:
- A connection goes back to the pool only after its answer was read whole and did not
  ask to close; one the server has closed meanwhile is dropped, not reused.
- Failures are httpx's exceptions with the meaning that `api/transport.py` reads: a
  refused or timed-out connect is `ConnectError`/`ConnectTimeout` (the request never
  left, with the TLS error as cause when there is one); a hang-up before any answer byte is
  `RemoteProtocolError` "Server disconnected without sending a response."; one mid-answer
  says "peer closed ... incomplete"; an answer that is not HTTP is no answer (the same
  hang-up), and a broken HTTP status line is "illegal status line".
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TypeVar

import httpx

T = TypeVar("T")
Origin = tuple[str, str, int]  # scheme, host, port

MAX_IDLE = 256  # idle connections kept per host: above the largest --parallel in use
MAX_HEAD = 64 * 1024  # bytes of status line and headers, together
BODY_PIECE = 1 << 20  # a body is read in pieces of this size, each under the read timeout
_DISCONNECTED = "Server disconnected without sending a response."
_INCOMPLETE = "peer closed connection without sending complete message body: incomplete"


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    plain: bool = False  # not TLS: the socket itself tells a hang-up (`reusable`)

    def reusable(self) -> bool:
        # The server may have closed it while idle: its EOF is in the buffer once the event
        # loop has read it. Before that, a plain socket readable while idle has nothing but
        # that EOF (or garbage) to give, as httpcore checks too. (A TLS socket may hold a
        # session ticket: the loop reads those.)
        if self.writer.is_closing() or self.reader.at_eof():
            return False
        if not self.plain:
            return True
        readable, _, _ = select.select([self.writer.get_extra_info("socket")], [], [], 0)
        return not readable

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class _Head:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool


class Wire(httpx.AsyncBaseTransport):
    """A keep-alive HTTP/1.1 pool over asyncio streams, http and https."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        headers = [
            (name, value)
            for name, value in request.headers.raw
            if name.lower() not in (b"transfer-encoding", b"content-length")
        ]
        head, content = await self.exchange(
            request.method,
            (url.scheme, url.host, url.port or default_port(url.scheme)),
            url.raw_path,
            headers,
            await request.aread(),
            request.extensions.get("timeout", {}),
            request,
        )
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=httpx.ByteStream(content),  # decoded by httpx per Content-Encoding
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    async def exchange(
        self,
        method: str,
        origin: Origin,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Mapping[str, float | None],
        request: httpx.Request | None = None,
    ) -> tuple[_Head, bytes]:
        """One request and its whole answer (head, undecoded body) on a pooled connection.
        `headers` must hold Host and no framing header (Content-Length is set here)."""
        connection = self._take(origin) or await self._connect(origin, timeouts, request)
        try:
            await _send(connection, method, target, headers, body, timeouts.get("write"), request)
            head = await _within(_read_head(connection.reader), timeouts.get("read"), request)
            content, complete = await _read_body(connection.reader, method, head, timeouts, request)
        except BaseException:
            connection.close()
            raise
        if head.keep_alive and complete and connection.reusable():
            self._put(origin, connection)
        else:
            connection.close()
        return head, content

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
            connection.close()
        return None

    def _put(self, origin: Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < MAX_IDLE:
            idle.append(connection)
        else:
            connection.close()

    async def _connect(
        self,
        origin: Origin,
        timeouts: Mapping[str, float | None],
        request: httpx.Request | None,
    ) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
                self._ssl.set_alpn_protocols(["http/1.1"])
            context = self._ssl
        opening = asyncio.open_connection(host, port, ssl=context, limit=MAX_HEAD)
        try:
            reader, writer = await asyncio.wait_for(opening, timeouts.get("connect"))
        except asyncio.TimeoutError as error:
            raise httpx.ConnectTimeout("timed out while connecting", request=request) from error
        except (OSError, ssl.SSLError) as error:
            raise httpx.ConnectError(str(error) or type(error).__name__, request=request) from error
        return _Connection(reader, writer, plain=context is None)


# `asyncio.timeout` from Python 3.11 on; 3.10 keeps `wait_for`.
_timeout: Callable[[float], AbstractAsyncContextManager[None]] | None = getattr(
    asyncio, "timeout", None
)


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


async def _bounded(work: Awaitable[T], seconds: float | None) -> T:
    """`work` awaited for at most `seconds`. `asyncio.timeout` (3.11) times the task itself:
    `wait_for` made a task per read, a tenth of sprunner's CPU per call at scale."""
    if _timeout is None or seconds is None:
        return await asyncio.wait_for(work, seconds)
    async with _timeout(seconds):
        return await work


async def _within(work: Awaitable[T], seconds: float | None, request: httpx.Request | None) -> T:
    try:
        return await _bounded(work, seconds)
    except asyncio.TimeoutError as error:
        raise httpx.ReadTimeout("timed out while reading the answer", request=request) from error
    except (ConnectionError, ssl.SSLError) as error:
        raise httpx.ReadError(str(error) or type(error).__name__, request=request) from error


async def _send(
    connection: _Connection,
    method: str,
    target: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    seconds: float | None,
    request: httpx.Request | None,
) -> None:
    lines = [b"%s %s HTTP/1.1\r\n" % (method.encode("ascii"), target)]
    lines.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
    if body or method not in ("GET", "HEAD", "DELETE"):
        lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    try:
        connection.writer.write(b"".join(lines) + body)
        await _bounded(connection.writer.drain(), seconds)
    except asyncio.TimeoutError as error:
        raise httpx.WriteTimeout("timed out while sending", request=request) from error
    except (ConnectionError, ssl.SSLError) as error:
        raise httpx.WriteError(str(error) or type(error).__name__, request=request) from error


async def _read_head(reader: asyncio.StreamReader) -> _Head:
    while True:
        head = await _head_once(reader)
        if not 100 <= head.status < 200:  # an interim answer (100 Continue): the real one follows
            return head


async def _head_once(reader: asyncio.StreamReader) -> _Head:
    try:
        line = await reader.readline()
    except (asyncio.LimitOverrunError, ValueError) as error:
        raise httpx.RemoteProtocolError("illegal status line: too long") from error
    if not line:
        raise httpx.RemoteProtocolError(_DISCONNECTED)
    parts = line.rstrip(b"\r\n").split(b" ", 2)
    if not parts[0].startswith(b"HTTP/"):
        # Not HTTP at all (an ssh banner...): no response, as httpcore says too; before the
        # API ever answered, api/transport.py then asks the port what it speaks.
        raise httpx.RemoteProtocolError(_DISCONNECTED)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"illegal status line: {line[:40]!r}")
    headers: list[tuple[bytes, bytes]] = []
    size = len(line)
    while True:
        try:
            field = await reader.readline()
        except (asyncio.LimitOverrunError, ValueError) as error:
            raise httpx.RemoteProtocolError("header line too long") from error
        size += len(field)
        if not field.endswith(b"\n"):  # the connection ended inside the head
            raise httpx.RemoteProtocolError(_INCOMPLETE)
        if field in (b"\r\n", b"\n"):
            break
        if size > MAX_HEAD or b":" not in field:
            raise httpx.RemoteProtocolError("illegal header line")
        name, _, value = field.partition(b":")
        headers.append((name.strip(), value.strip()))
    connection = _header(headers, b"connection").lower()
    keep_alive = parts[0] == b"HTTP/1.1" and b"close" not in connection
    if parts[0] == b"HTTP/1.0":
        keep_alive = b"keep-alive" in connection
    reason = parts[2] if len(parts) > 2 else b""
    return _Head(int(parts[1]), reason, headers, keep_alive)


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> bytes:
    return b",".join(value for name, value in headers if name.lower() == wanted)


async def _read_body(
    reader: asyncio.StreamReader,
    method: str,
    head: _Head,
    timeouts: Mapping[str, float | None],
    request: httpx.Request | None,
) -> tuple[bytes, bool]:
    """The body, and whether the connection may carry another exchange after it."""
    if method == "HEAD" or head.status in (204, 304):
        return b"", True
    seconds = timeouts.get("read")
    if b"chunked" in _header(head.headers, b"transfer-encoding").lower():
        return await _within(_chunks(reader), seconds, request), True
    length = _header(head.headers, b"content-length")
    if length:
        if not length.strip().isdigit():
            raise httpx.RemoteProtocolError("illegal Content-Length")
        pieces, left = [], int(length)
        while left:
            piece = await _within(_exactly(reader, min(left, BODY_PIECE)), seconds, request)
            pieces.append(piece)
            left -= len(piece)
        return b"".join(pieces), True
    # Neither: the body ends with the connection.
    pieces = []
    while piece := await _within(reader.read(BODY_PIECE), seconds, request):
        pieces.append(piece)
    return b"".join(pieces), False


async def _exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as error:
        raise httpx.RemoteProtocolError(_INCOMPLETE) from error


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    pieces = []
    while True:
        line = await reader.readline()
        if not line:
            raise httpx.RemoteProtocolError(_INCOMPLETE + " chunked read")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as error:
            raise httpx.RemoteProtocolError("illegal chunk size") from error
        if size == 0:
            break
        pieces.append(await _exactly(reader, size))
        await _exactly(reader, 2)  # the CRLF after each chunk
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass  # trailers: not used
    return b"".join(pieces)
