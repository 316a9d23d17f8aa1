"""`--ping URL` against real HTTP servers on 127.0.0.1: one that answers, one that hangs, and
a port where nothing listens."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sprunner.errors import UsageError
from sprunner.ping import Pinger, masked

SECRET = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, status: int = 200, hang: bool = False) -> None:
        self.status = status
        self.hang = hang
        self.paths: list[str] = []
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/ping/{SECRET}"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.server.hang:
            self.server.release.wait(30)
            return
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[type[Server]]:
    servers: list[Server] = []

    def make(**kwargs: object) -> Server:
        server = Server(**kwargs)  # type: ignore[arg-type]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ping/{SECRET}"  # nothing listens there now


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize(("code", "suffix"), [(0, ""), (1, "/1"), (3, "/3"), (143, "/143")])
def test_start_then_the_exit_code(serve: type[Server], code: int, suffix: str) -> None:
    server = serve()
    warnings: list[str] = []
    pinger = Pinger(server.url + "/", warn=warnings.append)
    pinger.start()
    pinger.finish(code)
    assert server.paths == [f"/ping/{SECRET}/start", f"/ping/{SECRET}{suffix}"]
    assert warnings == []


def test_a_hanging_server_neither_blocks_the_start_nor_holds_the_finish(
    serve: type[Server],
) -> None:
    server = serve(hang=True)
    warnings: list[str] = []
    pinger = Pinger(server.url, warn=warnings.append, bound=1.0, attempt_timeout=0.5)
    began = time.monotonic()
    pinger.start()
    assert time.monotonic() - began < 0.5  # the apply goes on at once
    _wait_for(lambda: server.paths)
    began = time.monotonic()
    pinger.finish(0)
    assert time.monotonic() - began < 1.5  # the bound, plus scheduling slack
    assert len(warnings) == 1
    assert SECRET not in warnings[0] and "/***" in warnings[0]


def test_a_refused_connection_is_warned_once_without_the_secret() -> None:
    warnings: list[str] = []
    pinger = Pinger(_refused_url(), warn=warnings.append, bound=3.0)
    began = time.monotonic()
    pinger.start()
    pinger.finish(1)  # both pings fail: one warning
    assert time.monotonic() - began < 3.5
    assert len(warnings) == 1
    assert "ConnectError" in warnings[0]
    assert SECRET not in warnings[0] and "/ping/" not in warnings[0]


def test_a_5xx_is_retried_once_and_a_4xx_is_not(serve: type[Server]) -> None:
    failing = serve(status=503)
    warnings: list[str] = []
    Pinger(failing.url, warn=warnings.append).finish(0)
    assert failing.paths == [f"/ping/{SECRET}"] * 2
    assert warnings and "HTTP 503" in warnings[0]

    missing = serve(status=404)
    Pinger(missing.url, warn=warnings.append).finish(0)
    assert missing.paths == [f"/ping/{SECRET}"]


def test_masking_and_url_checks() -> None:
    assert masked(f"https://user:pw@hc-ping.com/{SECRET}?rid=1") == "https://hc-ping.com/***"
    assert masked("http://[::1]:8000/x") == "http://[::1]:8000/***"
    assert SECRET not in repr(Pinger(f"https://hc-ping.com/{SECRET}", warn=print))
    for bad in ("hc-ping.com/x", "ftp://h/x", "https:///x"):
        with pytest.raises(UsageError):
            Pinger(bad, warn=print)
