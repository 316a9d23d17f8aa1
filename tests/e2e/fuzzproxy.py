"""A hostile proxy in front of the emulator, over real sockets: each answer as the emulator
gave it, or changed by a drawn `Mutation` (issue #23, hostile-answer fuzzing).

The proxy reads each request as raw bytes, forwards it to the emulator (so an apply gets
deep: creates, runs, polls, listings, results), then writes back the answer as raw bytes,
either whole or changed: a JSON value replaced (wrong types, odd numbers, lone surrogates,
dates that are no dates), a key dropped, a listing that never ends, another status, a huge
or deeply nested or binary body, or HTTP that is malformed or cut short. Test code may
parse HTTP; sprunner may not (it stands on httpx).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import strategies as st

# A JSON value that should never get past the boundary as-is (or should pass harmlessly).
HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([1e308, -1e308, 0.5, -1, 2**63, 10**30]),
    st.sampled_from(
        [
            "",
            "not-a-date",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "\ud800",
            "x\udfffy",
            "\u0000",
            "\u202e\ufeff",
            "completed",
            "in_progress",
            "x" * 5000,
        ]
    ),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)

RAW_ANSWERS = [
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x2\r\n[]\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: xchunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n",
    b"HTTP/1.1 20000000000000000000 OK\r\ncontent-length: 2\r\n\r\n[]",
    b"HTTP/1.1 200 OK\r\nx-a: a\x00b\r\ncontent-length: 2\r\n\r\n[]",
    b"HTTP/1.1 200 OK\r\nx-a: a\rb\r\ncontent-length: 2\r\n\r\n[]",
    b'HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{"id":',
    b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 2\r\n\r\n[]",
    b"HTTP/1.1 429 Too Many\r\nretry-after: \xff\xfe\r\ncontent-length: 2\r\n\r\n{}",
    b"HTTP/1.1 429 Too Many\r\nretry-after: 1e400\r\nx-ratelimit-limit: nan\r\n"
    b"x-ratelimit-remaining: -5\r\nx-ratelimit-reset: 99999999999999\r\n"
    b"content-length: 2\r\n\r\n{}",
    b"\x16\x03\x01\x00\x05hello",
    b"",  # the connection closes without an answer
]


@dataclass(frozen=True)
class Mutation:
    kind: str
    where: int = 0  # which value / key of the answer (modulo how many it has)
    value: Any = None


MUTATIONS = st.one_of(
    st.just(Mutation("pass")),
    st.builds(Mutation, st.just("value"), st.integers(0, 10_000), HOSTILE_VALUES),
    st.builds(Mutation, st.just("drop"), st.integers(0, 10_000)),
    st.builds(Mutation, st.just("endless")),
    st.builds(Mutation, st.just("status"), st.sampled_from([400, 401, 404, 409, 429, 500, 503])),
    st.builds(Mutation, st.just("raw"), st.integers(0, len(RAW_ANSWERS) - 1)),
    st.builds(Mutation, st.just("huge"), st.integers(1, 4)),  # MB of text in a JSON string
    st.builds(Mutation, st.just("deep"), st.sampled_from([500, 5_000, 100_000])),
    st.builds(Mutation, st.just("binary"), st.binary(min_size=1, max_size=200)),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "result":  # a scraped body is data, not the API's shape
                found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:20]):
            found += _paths(item, (*path, index))
    return found


def _set(data: Any, path: tuple[Any, ...], value: Any, *, drop: bool = False) -> Any:
    if not path:
        return data if drop else value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    elif not drop:
        parent[path[-1]] = value
    return data


def _http(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return head.encode() + b"content-length: %d\r\n\r\n" % len(body) + body


def mutate(mutation: Mutation, status: int, headers: dict[str, str], body: bytes) -> bytes:
    """The raw answer to send back, given the emulator's."""
    kind = mutation.kind
    if kind == "raw":
        return RAW_ANSWERS[mutation.where]
    if kind == "status":
        return _http(mutation.where, b'{"detail": "drawn"}', {"retry-after": "0"})
    if kind == "huge":
        return _http(status, b'{"detail": "' + b"x" * (mutation.where << 20) + b'"}')
    if kind == "deep":
        return _http(status, b"[" * mutation.where + b"]" * mutation.where)
    if kind == "binary":
        return _http(status, mutation.value)
    try:
        data = json.loads(body)
    except ValueError:
        return _http(status, body, headers)
    if kind in ("value", "drop"):
        paths = _paths(data)
        path = paths[mutation.where % len(paths)]
        data = _set(data, path, mutation.value, drop=kind == "drop")
    elif kind == "endless" and isinstance(data, dict) and "has_more" in data:
        data["has_more"], data["cursor_next"] = True, f"c{id(data)}"
    # ensure_ascii: a lone surrogate goes out as its `\ud800` escape, as a server would.
    return _http(status, json.dumps(data, ensure_ascii=True).encode(), headers)


class FuzzProxy:
    """Serve on a loopback port in a thread; `script` holds the mutations of the next calls
    (the n-th call of an apply gets `script[n]`; the others pass unchanged)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.script: dict[int, Mutation] = {}
        self.calls = 0
        self.endless = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fuzz-proxy")
        self.url = ""

    def __enter__(self) -> FuzzProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def reset(self, script: dict[int, Mutation]) -> None:
        self.script, self.calls, self.endless = script, 0, False

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with httpx.AsyncClient(base_url=self.upstream, timeout=30) as self._http:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            self._ready.set()
            async with server:
                await self._stop.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                answer, whole = await self._answer(method, target, headers, body)
                writer.write(answer)
                await writer.drain()
                if not whole:
                    break  # a broken answer: close, rather than leave the client waiting
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def _answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[bytes, bool]:
        sent = {k: v for k, v in headers.items() if k not in ("host", "content-length")}
        if self.endless and "/jobs" in target:
            # The cursors of an endless listing are ours: ask the emulator for its first page.
            url = httpx.URL(target)
            target = str(url.copy_remove_param("cursor"))
        real = await self._http.request(method, target, headers=sent, content=body)
        mutation = self.script.get(self.calls, Mutation("pass"))
        self.calls += 1
        if mutation.kind == "endless":
            self.endless = True
        if self.endless and "/jobs" in target and mutation.kind == "pass":
            mutation = Mutation("endless")
        kept = {k: v for k, v in real.headers.items() if k.startswith(("retry-after", "x-"))}
        return mutate(mutation, real.status_code, kept, real.content), mutation.kind != "raw"
