"""A small target site on loopback for fetch-mode tests: pages that work, fail and hang.

`/ok` answers 200, `/page` 200 with an HTML page (`PAGE`), `/error` 500, `/hang` never
answers (until the client gives up), and `refused_url()` names a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

PAGE = (
    "<html><head><title>Shop</title><style>p {color: red}</style></head><body>"
    "<h1>Shoes</h1><p>Red &amp; blue, <a href='/c/shoes?page=2'>next page</a></p>"
    "<ul><li>Boots</li><li>Sandals</li></ul></body></html>"
)
HANG_LIMIT = 30.0  # a hung page gives up by itself eventually, so shutdown never blocks


@dataclass
class Site:
    url: str
    hits: list[str] = field(default_factory=list)


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@contextmanager
def target_site() -> Iterator[Site]:
    site = Site(url="")
    stopping = threading.Event()

    async def ok(request: Request) -> Response:
        site.hits.append(request.url.path)
        return PlainTextResponse("<html>ok</html>")

    async def page(request: Request) -> Response:
        site.hits.append(request.url.path)
        return HTMLResponse(PAGE)

    async def error(request: Request) -> Response:
        site.hits.append(request.url.path)
        return PlainTextResponse("broken", status_code=500)

    async def hang(request: Request) -> Response:
        site.hits.append(request.url.path)
        deadline = time.monotonic() + HANG_LIMIT
        while not stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return PlainTextResponse("too late")

    routes = [Route("/ok", ok), Route("/page", page), Route("/error", error), Route("/hang", hang)]
    app = Starlette(routes=routes)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none")
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "target site did not start"
            time.sleep(0.01)
        site.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield site
    finally:
        stopping.set()
        server.should_exit = True
        thread.join(10)
        sock.close()
