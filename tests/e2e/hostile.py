"""A hostile API for end-to-end tests: the emulator behind middleware that answers badly.

`Hostile` wraps the emulator's ASGI app (`running_emulator(wrap=...)`). A `Rule` matches a
method, a path and, through `when`, anything about the call (its body, the collection its
path names); its `answer` either replaces the emulator's answer (after the emulator
did the work, with `after=True`), answers in its place (the work is not done), runs a side
effect and lets the call through (return `None`), or never answers (`HANG`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/v1/async/collections"
CID = r"(?P<cid>[^/]+)"  # path pieces for rules: a collection id, a run id
RID = r"(?P<rid>[^/]+)"
HANG = object()  # an answer that never comes


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"


def json_answer(status: int, text: str) -> Answer:
    return Answer(status, text.encode())


@dataclass(frozen=True)
class Call:
    match: re.Match[str]  # of the rule's path: named groups such as (?P<cid>...)
    body: bytes
    headers: dict[str, str]  # lower-case names
    query: str = ""  # the query string, decoded

    def __getitem__(self, group: str) -> str:
        return self.match[group]


@dataclass
class Rule:
    method: str
    path: str  # a regular expression, matched against the whole path
    answer: Callable[[Call], Answer | object | None]
    after: bool = False  # let the emulator do the work, then replace its answer
    when: Callable[[Call], bool] = lambda _: True  # decided before any work
    times: int | None = None  # match at most this many calls; None: every call
    hits: int = 0

    def match(self, scope: Scope, body: bytes) -> Call | None:
        if self.times is not None and self.hits >= self.times:
            return None
        if scope["method"] != self.method:
            return None
        found = re.fullmatch(self.path, scope["path"])
        if found is None:
            return None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        call = Call(found, body, headers, query)
        return call if self.when(call) else None


@dataclass
class Hostile:
    rules: list[Rule] = field(default_factory=list)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def hostile(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            body = await _read_body(receive)
            replay = _replay(body)
            for rule in self.rules:
                found = rule.match(scope, body)
                if found is not None:
                    rule.hits += 1
                    await self._apply(rule, found, app, scope, replay, send)
                    return
            await app(scope, replay(), send)

        return hostile

    async def _apply(
        self,
        rule: Rule,
        call: Call,
        app: ASGIApp,
        scope: Scope,
        replay: Callable[[], Receive],
        send: Send,
    ) -> None:
        if rule.after:

            async def swallow(_: Message) -> None:
                pass

            await app(scope, replay(), swallow)
        answer = rule.answer(call)
        if answer is None:
            await app(scope, replay(), send)
            return
        if answer is HANG:
            await asyncio.Event().wait()  # cancelled when the server shuts down
            return
        assert isinstance(answer, Answer)
        await _send(send, answer)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Callable[[], Receive]:
    """A fresh `receive` that hands the already-read body to the app again."""

    def receive_for_app() -> Receive:
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # as ASGI servers do: wait for a disconnect
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return receive

    return receive_for_app


async def _send(send: Send, answer: Answer) -> None:
    headers: list[Any] = [
        (b"content-type", answer.content_type.encode()),
        (b"content-length", str(len(answer.body)).encode()),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
