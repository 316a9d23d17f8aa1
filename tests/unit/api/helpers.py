"""A scripted API behind `httpx.MockTransport`: each test says what the next answers are."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from sprunner.api.client import ApiClient

T = TypeVar("T")
KEY = "sk-secret-1234567890"
BASE = "https://api.example.test"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def reply(status: int = 200, body: Any = None, **headers: str) -> httpx.Response:
    if isinstance(body, (str, bytes)):
        return httpx.Response(status, content=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class Script:
    """Answers in order; the last one repeats. Records every request it saw."""

    answers: list[Answer]
    seen: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers[min(len(self.seen) - 1, len(self.answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.seen]


def client(script: Script, **kw: Any) -> ApiClient:
    kw.setdefault("max_backoff", 0.001)
    kw.setdefault("max_attempts", 4)
    return ApiClient(
        base_url=kw.pop("base_url", BASE),
        api_key=kw.pop("api_key", KEY),
        transport=httpx.MockTransport(script),
        **kw,
    )


RUN = {
    "run_id": "r1",
    "status": "in_progress",
    "total_requests": 3,
    "success_requests": 1,
    "failed_requests": 0,
    "timeout_requests": 0,
    "collection_id": "c1",
}
