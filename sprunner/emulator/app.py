"""The HTTP face of the emulator: SPEC §1's routes, status codes and `{"detail": ...}` errors.

Each call passes the same gate, in the order a real deployment would apply it: the bearer
key is checked (from the headers only), the body of an authorized call is read (at most
`max_body_bytes`: 413 beyond, without reading the rest), the faults are decided, then any
injected delay, rate limit / injected 429 or 5xx, a 401 for a wrong key, the work, and any
after-the-work fault (500, or a connection closed without an answer).

The body is read before the delay on purpose: a client that goes away during a `slow`
fault (killed, say) does not undo the work, which is the case interruption tests need.
An unauthorized caller never makes the emulator read, let alone buffer, its body.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sprunner.emulator.engine import Engine, EngineError
from sprunner.emulator.faults import Decision, Faults
from sprunner.emulator.latency import Latency
from sprunner.emulator.validation import parse_json

PREFIX = "/v1/async/collections"
MAX_BODY_BYTES = 64 * 1024 * 1024  # far above 50,000 requests; far below the machine
# A refused call's body is read and dropped up to this size, so that an ordinary client
# reads its 401/429/503 on a healthy connection; a bigger one is never read at all.
DRAIN_BYTES = 64 * 1024


class DroppedResponse(Response):
    """Start an answer, then return without its body: uvicorn closes the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or EngineError(413) as soon as it is known to be over `limit` bytes."""
    too_big = EngineError(413, f"request body over {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_big
    return bytes(body)


async def drain(request: Request, limit: int) -> bool:
    """Read and drop a body of at most `limit` bytes; False (nothing more read) if larger."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return False
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            return False
    return True


class _Gate:
    """What every call passes: the body (authorized callers only), the faults, the key,
    the work, and any after-the-work fault (see the module docstring for the order)."""

    def __init__(
        self,
        engine: Engine,
        faults: Faults,
        *,
        api_key: str,
        max_body: int,
        latency: Latency | None = None,
    ) -> None:
        self.engine, self.faults, self.max_body = engine, faults, max_body
        self.expected = f"Bearer {api_key}".encode()
        self.latency = latency
        self.in_flight = 0  # calls being handled now (a `busy` latency grows with it)

    async def __call__(
        self,
        request: Request,
        route: str,
        work: Callable[[bytes, Decision], Any],
        status: int = 200,
    ) -> Response:
        self.engine.calls[route] += 1
        self.engine.timeline.append((time.monotonic(), route))
        authorized = hmac.compare_digest(
            request.headers.get("authorization", "").encode(), self.expected
        )
        raw, close = b"", False
        if request.method in ("POST", "PUT"):
            try:
                if authorized:
                    raw = await read_body(request, self.max_body)
                else:
                    close = not await drain(request, DRAIN_BYTES)
            except EngineError as error:
                return _detail(error.status, error.detail, {"Connection": "close"})
            except ClientDisconnect:
                return Response(status_code=400)  # nobody is left to read it
        # Decided once the body is in: a fault that fired (a held PUT, say) has the whole
        # request, so a client killed after it was counted cannot take the body back.
        decision = self.faults.decide(route)
        self.in_flight += 1
        try:
            delay = decision.delay
            if self.latency is not None:
                delay += self.latency.delay(self.in_flight)
            if delay:
                await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1
        refused = _rejection(decision)
        if refused is None and not authorized:
            refused = _detail(401, "Invalid or missing API key")
        if refused is not None:
            refused.headers.update(decision.headers)
            if close:  # the body was left unread: this connection cannot carry another call
                refused.headers["Connection"] = "close"
            return refused
        return await self._work(work, raw, decision, status)

    async def _work(
        self, work: Callable[[bytes, Decision], Any], raw: bytes, decision: Decision, status: int
    ) -> Response:
        try:
            result = work(raw, decision)
            if asyncio.iscoroutine(result):
                result = await result
        except EngineError as error:
            return _detail(error.status, error.detail)
        if decision.after == "error":
            return _detail(500, "Internal server error (injected after the work was done)")
        if decision.after == "drop":
            return DroppedResponse()
        return JSONResponse(result, status_code=status, headers=decision.headers)


def _collection_routes(engine: Engine, gate: _Gate) -> list[Route]:
    """Collections: list, create (with Idempotency-Key replays), get, update, delete."""

    async def collections(request: Request) -> Response:
        if request.method == "GET":
            name = request.query_params.get("name")
            return await gate(request, "list", lambda *_: engine.list_collections(name))

        def create(raw: bytes, decision: Decision) -> dict[str, Any]:
            key = request.headers.get("idempotency-key")
            use_key = key is not None and decision.idempotency
            if use_key and key in engine.idempotency:
                return engine.idempotency[key][1]  # replay: no second collection
            answer = engine.create_collection(parse_json(raw))
            if use_key and key is not None:
                engine.idempotency[key] = (201, answer)
            return answer

        return await gate(request, "create", create, status=201)

    async def collection(request: Request) -> Response:
        cid = request.path_params["collection_id"]
        if request.method == "GET":
            return await gate(request, "get", lambda *_: engine.get_collection(cid))
        if request.method == "DELETE":
            return await gate(request, "delete", lambda *_: engine.delete_collection(cid))

        def update(raw: bytes, _: Decision) -> dict[str, Any]:
            # Look the collection up before the body, so an unknown id is a 404, not a 422.
            engine.get_collection(cid)
            return engine.update_collection(cid, parse_json(raw))

        return await gate(request, "update", update)

    return [
        Route(PREFIX, collections, methods=["GET", "POST"]),
        Route(PREFIX + "/{collection_id}", collection, methods=["GET", "PUT", "DELETE"]),
    ]


def _run_routes(engine: Engine, gate: _Gate) -> list[Route]:
    """Runs: start, list, get; a run's jobs and one job's result."""

    async def start_run(request: Request) -> Response:
        cid = request.path_params["collection_id"]
        return await gate(request, "run", lambda *_: engine.start_run(cid), status=201)

    async def runs(request: Request) -> Response:
        cid = request.path_params["collection_id"]
        status = request.query_params.get("status_filter")
        return await gate(request, "list_runs", lambda *_: engine.list_runs(cid, status))

    async def run(request: Request) -> Response:
        cid, rid = request.path_params["collection_id"], request.path_params["run_id"]
        return await gate(request, "get_run", lambda *_: engine.get_run(cid, rid))

    async def jobs(request: Request) -> Response:
        cid, rid = request.path_params["collection_id"], request.path_params["run_id"]
        params = request.query_params
        return await gate(request, "list_jobs", lambda *_: engine.list_jobs(cid, rid, params))

    async def result(request: Request) -> Response:
        cid, rid = request.path_params["collection_id"], request.path_params["run_id"]
        jid = request.path_params["job_id"]
        return await gate(request, "get_result", lambda *_: engine.get_result(cid, rid, jid))

    run_path = PREFIX + "/{collection_id}/runs/{run_id}"
    return [
        Route(PREFIX + "/{collection_id}/run", start_run, methods=["POST"]),
        Route(PREFIX + "/{collection_id}/runs", runs, methods=["GET"]),
        Route(run_path, run, methods=["GET"]),
        Route(run_path + "/jobs", jobs, methods=["GET"]),
        Route(run_path + "/jobs/{job_id}/result", result, methods=["GET"]),
    ]


def build_app(
    engine: Engine,
    faults: Faults,
    *,
    api_key: str,
    max_body_bytes: int = MAX_BODY_BYTES,
    latency: Latency | None = None,
) -> Starlette:
    gate = _Gate(engine, faults, api_key=api_key, max_body=max_body_bytes, latency=latency)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _detail(exc.status_code, exc.detail, dict(exc.headers or {}))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await engine.aclose()

    return Starlette(
        routes=[*_collection_routes(engine, gate), *_run_routes(engine, gate)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )


def _rejection(decision: Decision) -> Response | None:
    if decision.reject == "429":
        return _detail(
            429,
            "Too many requests: rate limit exceeded (emulator)",
            {"Retry-After": str(decision.retry_after)},
        )
    if decision.reject == "quota":
        return _detail(429, "Monthly quota exceeded for this plan (injected fault)")
    if decision.reject == "error":
        return _detail(503, "Service temporarily unavailable (injected fault)")
    return None
