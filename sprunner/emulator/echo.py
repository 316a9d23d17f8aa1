"""An indiscreet API: the emulator echoing URLs back changed, and quoting them in errors.

A real deployment may give a job's URL back otherwise than it was sent, and quote it in
its messages; sprunner must show its own masked render instead and never leak an env()
value that way (SPEC §10, "A secret never leaves"). `Echo` wraps the emulator's ASGI app
(`running_emulator(wrap=Echo(...).wrap)`) and, for every job the answers carry (a run's
`failed_jobs`, the jobs listing, a result body), applies its `transforms` in the order of
this table, whatever the order given (an API parses the URL, changes it, then writes it
out: the writing never comes before a change of its structure):

| transform  | the URL comes back...                                  |
| ---------- | ------------------------------------------------------ |
| `reorder`  | with its query parameters in reverse order             |
| `fragment` | with `#top` added                                      |
| `param`    | with a parameter `echo=1` added                        |
| `upper`    | upper-cased whole                                      |
| `host`     | with its scheme and host upper-cased                   |
| `lower-hex`| with its percent-escapes in lower-case hex             |
| `decode`   | percent-decoded                                        |
| `encode`   | percent-encoded anew, every reserved character of it   |

With `quote`, a job's error and message end with `: <the echoed URL>`, written as
`quoting` says: `plain`, `json` (a JSON string), `html`, `xml`, `percent` (every reserved
character percent-encoded) or `json-percent` (a JSON string, percent-encoded). A create or
update whose request list holds a URL containing `refuse` is answered 422 `{"detail":
"URL blocked: <the URL as sent, percent-encoded>"}` without doing the work.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit
from xml.sax.saxutils import escape as xml_escape

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRANSFORMS = ("reorder", "fragment", "param", "upper", "host", "lower-hex", "decode", "encode")
_JOB_KEYS = {"job_id", "job_public_id", "html"}  # a job, or a result body: its url echoes
_COLLECTIONS = re.compile(r"/v1/async/collections(/[^/]+)?\Z")


def _reorder(url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(reversed(parts.query.split("&"))) if parts.query else ""
    return urlunsplit(parts._replace(query=query))


def _param(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=f"{parts.query}&echo=1" if parts.query else "echo=1"))


def _host(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.upper(), netloc=parts.netloc.upper()))


_APPLY: dict[str, Callable[[str], str]] = {
    "reorder": _reorder,
    "fragment": lambda url: url.split("#", 1)[0] + "#top",
    "param": _param,
    "upper": str.upper,
    "host": _host,
    "lower-hex": lambda url: re.sub(r"%[0-9A-Fa-f]{2}", lambda m: m[0].lower(), url),
    "decode": unquote,
    "encode": lambda url: quote(unquote(url), safe=":/?&=#"),
}


_QUOTING: dict[str, Callable[[str], str]] = {
    "plain": lambda url: url,
    "json": json.dumps,
    "html": html.escape,
    "xml": lambda url: xml_escape(url, {'"': "&quot;", "'": "&apos;"}),
    "percent": lambda url: quote(url, safe=""),
    "json-percent": lambda url: quote(json.dumps(url), safe=""),
}
QUOTINGS = tuple(_QUOTING)


@dataclass(frozen=True)
class Echo:
    transforms: tuple[str, ...] = ()
    quote: bool = True  # errors and messages quote the echoed URL
    quoting: str = "plain"  # how they write it
    refuse: str = "refuse"  # a URL holding this word is refused at create, quoted

    def __post_init__(self) -> None:
        unknown = [t for t in self.transforms if t not in _APPLY]
        if unknown or self.quoting not in _QUOTING:
            raise ValueError(
                f"unknown echo transforms {unknown} or quoting {self.quoting!r}; "
                f"known: {TRANSFORMS}, {QUOTINGS}"
            )

    def url(self, url: str) -> str:
        for name in sorted(self.transforms, key=TRANSFORMS.index):
            url = _APPLY[name](url)
        return url

    def _job(self, job: dict[str, Any]) -> None:
        echoed = self.url(str(job["url"]))
        job["url"] = echoed
        for key in ("error", "message"):
            if self.quote and isinstance(job.get(key), str):
                job[key] = f"{job[key]}: {_QUOTING[self.quoting](echoed)}"

    def _walk(self, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                self._walk(item)
        elif isinstance(value, dict):
            if isinstance(value.get("url"), str) and (
                {"job_id", "job_public_id", "html"} & set(value)
            ):
                self._job(value)
            for item in value.values():
                self._walk(item)

    def _refused(self, body: bytes) -> bytes | None:
        """The 422 body for a create or update that carries a refused URL; else None."""
        try:
            requests = json.loads(body).get("requests") or []
        except (ValueError, AttributeError):
            return None
        for request in requests:
            url = request.get("url") if isinstance(request, dict) else None
            if isinstance(url, str) and self.refuse in url:
                detail = f"URL blocked: {quote(url, safe=':/')}"
                return json.dumps({"detail": detail}).encode()
        return None

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def echoing(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            body = await _read(receive)
            writes = scope["method"] in ("POST", "PUT") and _COLLECTIONS.match(scope["path"])
            refused = self._refused(body) if writes else None
            if refused is not None:
                await _answer(send, 422, refused)
                return
            answer = _Buffer()
            await app(scope, _replay(body), answer.send)
            await answer.forward(send, self._walk if scope["method"] == "GET" else None)

        return echoing


class _Buffer:
    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def forward(self, send: Send, change: Callable[[Any], None] | None) -> None:
        assert self.start is not None
        body = self.body
        if change is not None and body[:1] in (b"{", b"["):
            document = json.loads(body)
            change(document)
            body = json.dumps(document).encode()
        headers = [
            (k, v) for k, v in self.start.get("headers", []) if k.lower() != b"content-length"
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**self.start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """The already-read body handed to the app again; then, as ASGI servers do, a wait
    for the disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
