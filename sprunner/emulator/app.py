"""The HTTP face of the emulator: SPEC §1's routes, status codes and `{"detail": ...}` errors.

Each call passes the same gate, in the order a real deployment would apply it: injected
delay, rate limit / injected 429, injected 5xx, bearer key, then the work, then any
after-the-work fault (500, or a connection closed without an answer).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sprunner.emulator.engine import Engine, EngineError
from sprunner.emulator.faults import Decision, Faults

PREFIX = "/v1/async/collections"


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


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError:
        raise EngineError(422, "body is not valid JSON") from None


def build_app(engine: Engine, faults: Faults, *, api_key: str) -> Starlette:
    expected = f"Bearer {api_key}".encode()

    async def gate(
        request: Request, route: str, work: Callable[[Decision], Any], status: int = 200
    ) -> Response:
        if request.method in ("POST", "PUT"):
            # Take the whole request before anything else, as a real server does: a client
            # that goes away afterwards (killed during a `slow` fault, say) does not undo the
            # work, which is the case interruption tests need.
            await request.body()
        engine.calls[route] += 1
        decision = faults.decide(route)
        if decision.delay:
            await asyncio.sleep(decision.delay)
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
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return _detail(401, "Invalid or missing API key")
        try:
            result = work(decision)
            if asyncio.iscoroutine(result):
                result = await result
        except EngineError as error:
            return _detail(error.status, error.detail)
        if decision.after == "error":
            return _detail(500, "Internal server error (injected after the work was done)")
        if decision.after == "drop":
            return DroppedResponse()
        return JSONResponse(result, status_code=status)

    async def collections(request: Request) -> Response:
        if request.method == "GET":
            name = request.query_params.get("name")
            return await gate(request, "list", lambda _: engine.list_collections(name))

        async def create(decision: Decision) -> dict[str, Any]:
            key = request.headers.get("idempotency-key")
            use_key = key is not None and decision.idempotency
            if use_key and key in engine.idempotency:
                return engine.idempotency[key][1]  # replay: no second collection
            answer = engine.create_collection(await _body(request))
            if use_key and key is not None:
                engine.idempotency[key] = (201, answer)
            return answer

        return await gate(request, "create", create, status=201)

    async def collection(request: Request) -> Response:
        cid = request.path_params["collection_id"]
        if request.method == "GET":
            return await gate(request, "get", lambda _: engine.get_collection(cid))
        if request.method == "DELETE":
            return await gate(request, "delete", lambda _: engine.delete_collection(cid))

        async def update(_: Decision) -> dict[str, Any]:
            # Look the collection up before the body, so an unknown id is a 404, not a 422.
            engine.get_collection(cid)
            return engine.update_collection(cid, await _body(request))

        return await gate(request, "update", update)

    async def start_run(request: Request) -> Response:
        cid = request.path_params["collection_id"]
        return await gate(request, "run", lambda _: engine.start_run(cid), status=201)

    async def runs(request: Request) -> Response:
        cid = request.path_params["collection_id"]
        status = request.query_params.get("status_filter")
        return await gate(request, "list_runs", lambda _: engine.list_runs(cid, status))

    async def run(request: Request) -> Response:
        cid, rid = request.path_params["collection_id"], request.path_params["run_id"]
        return await gate(request, "get_run", lambda _: engine.get_run(cid, rid))

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _detail(exc.status_code, exc.detail, dict(exc.headers or {}))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await engine.aclose()

    return Starlette(
        routes=[
            Route(PREFIX, collections, methods=["GET", "POST"]),
            Route(PREFIX + "/{collection_id}", collection, methods=["GET", "PUT", "DELETE"]),
            Route(PREFIX + "/{collection_id}/run", start_run, methods=["POST"]),
            Route(PREFIX + "/{collection_id}/runs", runs, methods=["GET"]),
            Route(PREFIX + "/{collection_id}/runs/{run_id}", run, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
