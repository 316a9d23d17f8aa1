"""How requests enter httpcore's pool (issue #28's CPU a call), over real loopback sockets.

httpcore 1.0 hands an idle connection to every request that enters the pool before the
first of them has started on it; all but one then go round the pool again, each round a
scan of every connection. `httpclient.PoolGate` lets one request in at a time until httpcore's
first trace event for it. The pool is spied on (its own code still runs), not replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest

from sprunner.api import httpclient
from sprunner.api.client import ApiClient
from sprunner.api.errors import TransportError

from .helpers import KEY, run

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


@contextlib.asynccontextmanager
async def serving(accepted: list[int], delay: float = 0.0) -> AsyncIterator[str]:
    """Answers `[]` to every request, after `delay`; counts the connections it accepts."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(delay)
                writer.write(OK)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def test_each_request_goes_through_the_pool_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many callers at once, 32 in flight, answers in a few ms: each request is placed by one
    pass of the pool on its way in and one as its answer is closed; none goes round again
    (ungated, the same load took 3,357 passes for its 450 requests)."""
    pool = httpcore.AsyncConnectionPool
    passes: list[int] = []
    assign = pool._assign_requests_to_connections

    def counted(self: httpcore.AsyncConnectionPool) -> list[httpcore.AsyncConnectionInterface]:
        passes.append(1)
        return assign(self)

    monkeypatch.setattr(pool, "_assign_requests_to_connections", counted)

    async def go() -> int:
        async with (
            serving([], delay=0.002) as url,
            ApiClient(base_url=url, api_key=KEY, parallel=32) as api,
        ):
            for _ in range(3):  # the second and third bursts reuse idle connections
                found = await asyncio.gather(*(api.list_collections() for _ in range(150)))
                assert found == [[]] * 150
            assert not api._exchange._gate._lock.locked()
            return api.calls

    calls = run(go())
    assert calls == 450
    assert len(passes) == 2 * calls


def test_the_gate_opens_when_a_request_fails_or_is_cancelled() -> None:
    """A request that never reaches the network (refused, or cancelled at the gate) must not
    keep the gate shut for the calls after it."""
    gate = httpclient.PoolGate()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
            with pytest.raises(httpx.ConnectError):
                await gate.send(client, client.build_request("GET", "http://127.0.0.1:9/"))
            assert not gate._lock.locked()
            await gate._lock.acquire()  # someone inside: the next caller waits, is cancelled
            waiting = asyncio.ensure_future(
                gate.send(client, client.build_request("GET", "http://127.0.0.1:9/"))
            )
            await asyncio.sleep(0)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            gate._lock.release()
            assert not gate._lock.locked()

    run(go())


def test_a_refused_connection_leaves_later_calls_free() -> None:
    """Over real sockets: a port nobody listens on fails every attempt as a transport error,
    and the gate is open after it (the pool's trace never started)."""

    async def go() -> None:
        async with serving([]) as url:
            port = url.rsplit(":", 1)[1]
        async with ApiClient(
            base_url=f"http://127.0.0.1:{port}", api_key=KEY, max_attempts=2, max_backoff=0.01
        ) as api:
            with pytest.raises(TransportError):
                await api.list_collections()
            assert not api._exchange._gate._lock.locked()

    run(go())


def test_an_idle_connection_is_closed_after_the_keepalive_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Idle connections are dropped after `KEEPALIVE_EXPIRY` (every idle one costs each later
    request a check): a call within it reuses the connection, a call after it opens one."""
    monkeypatch.setattr(httpclient, "KEEPALIVE_EXPIRY", 0.2)
    accepted: list[int] = []

    async def go() -> None:
        async with serving(accepted) as url, ApiClient(base_url=url, api_key=KEY) as api:
            await api.list_collections()
            await api.list_collections()
            assert len(accepted) == 1
            await asyncio.sleep(0.5)
            await api.list_collections()
            assert len(accepted) == 2

    run(go())
