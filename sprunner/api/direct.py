"""Sending to the API's base URL through the Wire pool without building httpx requests.

At thousands of calls, httpx's client work around each exchange (merging the URL with the
base URL, parsing it, merging headers and cookies, the auth and redirect steps, streaming
the answer through its decoders) cost as much CPU as the exchange itself. A base URL is
fixed for a client, so its origin, path prefix and header block are made once here, and
each call only joins a path and sends. The answer is a `Reply`: what `api/exchange.py`
reads of an `httpx.Response` (status, headers, decoded content), without the rest, which
cost a fifteenth of sprunner's CPU per call at scale. Failures are still httpx's
exceptions, so everything after the exchange is the same on either road.

Taken only when httpx would send straight to the host: a base URL with user-info or a
query, or a proxy named by the environment for it, goes through httpx's client instead.
"""

from __future__ import annotations

import json
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from sprunner.api.wire import Wire, default_port

# What httpx leaves unescaped in a path: only other characters of a joined path are quoted.
_PATH_SAFE = "/:@!$&'()*+,;=%~"


def usable(base_url: str) -> bool:
    """Whether httpx would send to this base URL directly (no proxy, nothing to carry)."""
    parts = urlsplit(base_url)
    if parts.username or parts.password or parts.query or not parts.hostname:
        return False
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass(parts.hostname))  # no_proxy lists the host


def encode_json(body: Any) -> bytes:
    """A JSON body as httpx encodes `json=`: compact, UTF-8."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class Direct:
    """One base URL's sending details, made once per client."""

    def __init__(
        self, wire: Wire, base_url: str, headers: Mapping[str, str], timeout: float
    ) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname is not None  # checked by `usable`
        self._wire = wire
        self._origin = (parts.scheme, parts.hostname, parts.port or default_port(parts.scheme))
        self._prefix = parts.path.rstrip("/")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        fixed = {"Host": host, "Accept-Encoding": "gzip, deflate", **headers}
        self._headers = [(k.encode("ascii"), v.encode("utf-8")) for k, v in fixed.items()]
        self._timeouts = {"connect": timeout, "read": timeout, "write": timeout}

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> Reply:
        target = quote(self._prefix + path, safe=_PATH_SAFE)
        if params:
            target += "?" + urlencode(params, quote_via=quote)
        extra = [(k.encode("ascii"), v.encode("utf-8")) for k, v in (headers or {}).items()]
        head, content = await self._wire.exchange(
            method,
            self._origin,
            target.encode("ascii"),
            [*self._headers, *extra],
            body or b"",
            self._timeouts,
        )
        answer_headers, content = _decoded(head.headers, content)
        return Reply(head.status, answer_headers, content)


class Reply:
    """An answer as `api/exchange.py` reads it; `httpx.Response` has the same attributes."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        self.status_code = status
        self.headers = ReplyHeaders(headers)
        self.content = content

    @property
    def text(self) -> str:
        """The body decoded as httpx decodes it (an error message's detail only)."""
        return httpx.Response(self.status_code, headers=self.headers.raw, content=self.content).text


class ReplyHeaders(Mapping[str, str]):
    """Header values by name, any case; repeated ones joined by ", " as httpx does."""

    __slots__ = ("_values", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        self._values: dict[str, str] = {}
        for name, value in raw:
            key, text = name.decode("latin-1").lower(), _text(value)
            self._values[key] = f"{self._values[key]}, {text}" if key in self._values else text

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _decoded(
    headers: list[tuple[bytes, bytes]], content: bytes
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The body with its Content-Encoding (gzip, deflate) undone, and the headers without
    it (httpx would otherwise decode it a second time)."""
    codings = [v.strip().lower() for k, v in headers if k.lower() == b"content-encoding"]
    if not codings or codings == [b"identity"]:
        return headers, content
    try:
        for coding in reversed(b",".join(codings).split(b",")):
            coding = coding.strip()
            if coding == b"gzip":
                content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
            elif coding == b"deflate":
                content = _inflate(content)
            elif coding != b"identity":
                raise httpx.DecodingError(f"unsupported content encoding {coding!r}")
    except zlib.error as error:
        raise httpx.DecodingError(f"the answer's {codings!r} body is corrupt") from error
    kept = [(k, v) for k, v in headers if k.lower() not in (b"content-encoding", b"content-length")]
    return kept, content


def _inflate(content: bytes) -> bytes:
    try:
        return zlib.decompress(content)
    except zlib.error:
        return zlib.decompress(content, -zlib.MAX_WBITS)  # raw deflate, as some servers send
