"""A dead man's switch on loopback (healthchecks.io's ping API, as far as sprunner uses it):
it records every ping (method, path, query, body) and answers as a test asks: 200 "OK",
another status, a hang, or a huge gzip-encoded answer (a gzip bomb)."""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

Answer = Literal["ok", "hang", "bomb"]


@dataclass(frozen=True)
class Ping:
    method: str
    path: str
    query: dict[str, str]
    body: str


def bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed (about a thousandth of that on the wire), made a
    mebibyte at a time: the test process never holds the expanded bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size >> 20)]
    return b"".join([*parts, packer.flush()])


class Monitor(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, status: int = 200, answer: Answer = "ok", bomb_size: int = 1 << 28):
        self.status = status
        self.answer = answer
        self.pings: list[Ping] = []
        self.release = threading.Event()
        self.bomb = bomb(bomb_size) if answer == "bomb" else b""
        self.sent = 0  # bytes of answer bodies written (the bomb's, until the client left)
        super().__init__(("127.0.0.1", 0), _Handler)

    def url(self, check: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/ping/{check}"

    def __enter__(self) -> Monitor:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Monitor
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._ping()

    def do_POST(self) -> None:
        self._ping()

    def _ping(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.server.pings.append(Ping(self.command, parts.path, query, body))
        if self.server.answer == "hang":
            self.server.release.wait(30)
            return
        payload = self.server.bomb if self.server.answer == "bomb" else b"OK"
        self.send_response(self.server.status)
        if self.server.answer == "bomb":  # whatever the client's Accept-Encoding said
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            for start in range(0, len(payload), 65536):
                self.wfile.write(payload[start : start + 65536])
                self.server.sent += min(65536, len(payload) - start)
        except OSError:  # the client read what it wanted and went away
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass
