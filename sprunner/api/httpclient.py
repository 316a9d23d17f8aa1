"""The one HTTP path: httpx's client on its own transport (httpcore), answers read capped.

httpx parses HTTP, pools connections, speaks TLS and follows the environment as it
documents (`trust_env`): `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`,
`SSL_CERT_FILE`, `SSL_CERT_DIR`. Tests inject an `httpx.MockTransport` at the transport seam
(`transport=`); everything above it is what production runs. httpx-aiohttp was measured
against httpcore and not chosen (bench/README.md, "One HTTP path").

Answers are streamed and capped: a body over `cap` bytes (after Content-Encoding is undone,
so a gzip bomb stops at the cap too) is an `AnswerTooLarge`; an error answer's body is only
read as far as `ERROR_BODY` (its detail is cut short anyway). The body is gathered in one
`bytearray`, never joined from pieces: a 100 MB result costs 100 MB here, not 200.

Requests enter httpcore's pool one at a time (`PoolGate`). httpcore 1.0 hands an idle
connection to a request but marks it busy only once that request runs again, after a yield:
every request that enters in between is handed the same connection, finds it busy, and goes
round the pool again (`ConnectionNotAvailable`), each round a scan of every connection
(encode/httpcore#822, #1035; no release fixes it). At `--parallel 64` on loopback that
was four rounds a request and a third of sprunner's CPU.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from sprunner.errors import UsageError

MiB = 1024 * 1024
MAX_ANSWER = 128 * MiB  # a listing or a jobs page with its bodies (100 x ~256 KB inline)
MAX_RESULT = 512 * MiB  # one job's result alone: a scraped page can be 100 MB
ERROR_BODY = 64 * 1024  # what is read of an error answer
# Seconds an idle connection is kept. httpcore checks every idle connection (two system
# calls each) for every request it places and every answer it closes, so a burst of
# `--parallel 64` left 60 idle connections costing more than the call itself. A connection
# unused for a second is not what the window needs now; and below the 5 s keep-alive of
# common servers (uvicorn, the emulator), a connection is not reused as the server drops it.
KEEPALIVE_EXPIRY = 1.0


class AnswerTooLarge(Exception):
    """An answer's body went over its cap; `size` is how far it was read (or declared)."""

    def __init__(self, size: int, cap: int) -> None:
        self.size, self.cap = size, cap
        limit = f"{cap // MiB} MiB" if cap >= MiB else f"{cap} bytes"
        super().__init__(f"the answer is over {limit}")


@dataclass(frozen=True)
class Received:
    """One answer, read whole within its cap: what the rest of `api/` reads of it."""

    status_code: int
    headers: httpx.Headers
    content: bytes | bytearray

    @property
    def text(self) -> str:
        charset = self.headers.get("content-type", "").partition("charset=")[2].strip(' "')
        try:
            return bytes(self.content[:ERROR_BODY]).decode(charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return bytes(self.content[:ERROR_BODY]).decode("utf-8", errors="replace")


def check_key(api_key: str) -> None:
    """A key that would not travel as one header value is refused before anything is sent.

    A CR or LF would end the header line and start another: the key is never sent that
    way, nor with any other control or non-ASCII character (the message does not show it).
    """
    bad = next((c for c in api_key if not " " <= c <= "~"), None)
    if bad is not None:
        what = "a line break" if bad in "\r\n" else f"the character U+{ord(bad):04X}"
        raise UsageError(
            f"the API key contains {what}: check SCRAPINGPROS_API_KEY or the --api-key-file "
            "(one line, printable ASCII); nothing was sent"
        )


def new_client(
    *,
    base_url: str,
    headers: Mapping[str, str],
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """httpx's client for the API; environment settings that cannot work are a UsageError."""
    try:
        return httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers),
            transport=transport,
            timeout=httpx.Timeout(timeout),
            # The window bounds the calls in flight, hence the connections: none is closed
            # for their number (httpcore 1.0 closes an idle one whenever the pool holds more
            # connections than `max_keepalive_connections`, busy ones counted: a window of 8
            # churned them), only for a second's idleness (KEEPALIVE_EXPIRY).
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=None,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
            follow_redirects=False,
            trust_env=True,
        )
    except (OSError, ssl.SSLError) as error:
        # SSL_CERT_FILE or SSL_CERT_DIR naming nothing usable: httpx loads it here.
        raise UsageError(
            f"cannot load the TLS certificates named by SSL_CERT_FILE / SSL_CERT_DIR: "
            f"{getattr(error, 'strerror', None) or error}"
        ) from None
    except (ValueError, httpx.InvalidURL) as error:
        raise UsageError(f"the proxy named by the environment is not usable: {error}") from None


class PoolGate:
    """Lets one request at a time into httpcore's pool, until it holds its connection.

    A request holds the gate from before the pool picks its connection to httpcore's first
    trace event (httpx's documented `trace` extension): `connection.connect_tcp.started`
    for a new connection, `http11.send_request_headers.started` for a reused one. By then
    the pool no longer offers that connection to anyone else. Nothing waits at the gate for
    the network: a connect, a send, an answer all happen after it. A request that fails
    before any event (or a transport that traces nothing, as in tests) opens it on return.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def send(self, http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        await self._lock.acquire()
        held = True

        def open_gate() -> None:
            nonlocal held
            if held:
                held = False
                self._lock.release()

        async def traced(event: str, info: Mapping[str, Any]) -> None:
            open_gate()

        request.extensions = {**request.extensions, "trace": traced}
        try:
            return await http.send(request, stream=True)
        finally:
            open_gate()


async def exchange(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None,
    content: bytes | None,
    headers: Mapping[str, str] | None,
    cap: int,
    gate: PoolGate | None = None,
) -> Received:
    """One request and its answer, the body read within `cap` (an error's within ERROR_BODY).
    Raises httpx's errors, and `AnswerTooLarge`."""
    request = http.build_request(method, path, params=params, content=content, headers=headers)
    if gate is None:
        response = await http.send(request, stream=True)
    else:
        response = await gate.send(http, request)
    try:
        failed = response.status_code >= 400
        body = await _read(response, ERROR_BODY if failed else cap, cut=failed)
    finally:
        await response.aclose()  # a body left unread closes its connection: never reused
    return Received(response.status_code, response.headers, body)


async def _read(response: httpx.Response, cap: int, *, cut: bool) -> bytearray:
    declared = response.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() and len(declared) < 19 else None
    if "content-encoding" in response.headers:
        size = None  # the length on the wire, not of the body once decoded
    if size is not None and size > cap and not cut:
        raise AnswerTooLarge(size, cap)
    if size is not None and not cut:
        return await _read_into(response, bytearray(size))
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) > cap:
            if cut:
                del body[cap:]
                break
            raise AnswerTooLarge(len(body), cap)
    return body


async def _read_into(response: httpx.Response, body: bytearray) -> bytearray:
    """Fill `body`, made at the declared length: no growth by copies, nothing over it.
    httpx itself refuses a body longer or shorter than its Content-Length."""
    view, filled = memoryview(body), 0
    try:
        async for piece in response.aiter_bytes():
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
    finally:
        view.release()
    return body


def json_headers(extra: Mapping[str, str] | None) -> dict[str, Any]:
    return {**(extra or {}), "Content-Type": "application/json"}
