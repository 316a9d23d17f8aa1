"""Start the emulator: in a background thread (tests, `apply --local`) or in the foreground.

`running_emulator()` binds the socket itself before the thread starts, so the port is known
(and free) when the context is entered, and it waits until uvicorn serves before yielding.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sprunner.emulator.app import MAX_BODY_BYTES, build_app
from sprunner.emulator.engine import Engine, Mode
from sprunner.emulator.faults import Fault, Faults
from sprunner.emulator.latency import Latency, parse_latency
from sprunner.emulator.results import DEFAULT_RETENTION

STARTUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class EmulatorHandle:
    url: str
    api_key: str
    engine: Engine
    faults: Faults
    host: str
    port: int


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections on Linux: without it, Nagle's algorithm and delayed
    # ACKs add ~40 ms to every answer, since headers and body are written separately.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(
    engine: Engine,
    faults: Faults,
    *,
    api_key: str,
    log_level: str = "warning",
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    latency: Latency | None = None,
) -> uvicorn.Server:
    app: ASGIApp = build_app(
        engine, faults, api_key=api_key, max_body_bytes=max_body_bytes, latency=latency
    )
    app = _dated(app, engine)
    config = uvicorn.Config(
        app if wrap is None else wrap(app),
        date_header=False,  # ours, on the API's (possibly skewed) clock
        log_level=log_level,
        log_config=None,  # leave the host program's logging alone
        access_log=False,
        lifespan="on",
        loop="asyncio",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def _dated(app: ASGIApp, engine: Engine) -> ASGIApp:
    """Every answer carries a `Date` header on the engine's clock (`clock_skew`)."""
    from email.utils import formatdate

    dates: dict[int, bytes] = {}  # the header of the current second, made once

    def date_header() -> bytes:
        second = int(engine.now())
        date = dates.get(second)
        if date is None:
            dates.clear()
            date = dates[second] = formatdate(second, usegmt=True).encode()
        return date

    async def dated(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_dated(message: Message) -> None:
            if message.get("type") == "http.response.start":
                date = date_header()
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"date"]
                message = {**message, "headers": [*headers, (b"date", date)]}
            await send(message)

        await app(scope, receive, send_dated if scope.get("type") == "http" else send)

    return dated


@contextmanager
def running_emulator(
    *,
    mode: Mode = "simulate",
    api_key: str = "test-key",
    run_seconds: float = 1.0,
    fetch_timeout: float = 10.0,
    fetch_concurrency: int = 16,
    faults: Faults | Iterable[str | Fault] = (),
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    result_retention: float = DEFAULT_RETENTION,
    allow_private: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    clock_skew: float = 0.0,
    store: Path | None = None,
    latency: str | Latency | None = None,
) -> Iterator[EmulatorHandle]:
    """Serve the emulator on `host:port` (0: a free port) in a thread for the `with` block.

    `wrap`: ASGI middleware around the app (tests answer calls in ways no fault models);
    `result_retention`: seconds results are kept (24 h by default); `allow_private=True`:
    fetch mode may reach loopback and private targets (the test sites), refused by default;
    `clock_skew`: seconds the API's clock is ahead of ours (negative: behind); `store`
    (simulate mode): a file the collections and runs are read from, and written back to
    when they changed (`store.py`: `apply --local` keeps them between commands);
    `latency`: how long answers take (`emulator/latency.py`: `fixed:S`, `heavy:MEDIAN[:P99]`,
    `busy:IDLE:BUSY[:N]`), drawn with `seed`.
    """
    engine = Engine(
        mode=mode,
        run_seconds=run_seconds,
        fetch_timeout=fetch_timeout,
        fetch_concurrency=fetch_concurrency,
        result_retention=result_retention,
        allow_private=allow_private,
        clock_skew=clock_skew,
    )
    active = faults if isinstance(faults, Faults) else Faults(faults, seed=seed)
    with (
        _kept(engine, store),
        _served(
            engine,
            active,
            api_key=api_key,
            wrap=wrap,
            max_body_bytes=max_body_bytes,
            host=host,
            port=port,
            latency=parse_latency(latency, seed=seed) if isinstance(latency, str) else latency,
        ) as handle,
    ):
        yield handle


@contextmanager
def _served(
    engine: Engine,
    faults: Faults,
    *,
    api_key: str,
    wrap: Callable[[ASGIApp], ASGIApp] | None,
    max_body_bytes: int,
    host: str,
    port: int,
    latency: Latency | None,
) -> Iterator[EmulatorHandle]:
    """`engine` served by uvicorn in a thread, on a socket bound before it starts."""
    server = make_server(
        engine,
        faults,
        api_key=api_key,
        wrap=wrap,
        max_body_bytes=max_body_bytes,
        latency=latency,
    )
    sock = bind(host, port)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # reported to the caller's thread below
            errors.append(error)

    thread = threading.Thread(target=serve, name="sprunner-emulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if errors or not thread.is_alive():
                raise RuntimeError(f"the emulator did not start: {errors[:1]!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start in time")
            time.sleep(0.01)
        bound_port = sock.getsockname()[1]
        yield EmulatorHandle(url_for(host, bound_port), api_key, engine, faults, host, bound_port)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        sock.close()


@contextmanager
def _kept(engine: Engine, store: Path | None) -> Iterator[None]:
    """With a `store` file: the engine filled from it, and written back when it changed."""
    if store is None:
        yield
        return
    from sprunner.emulator import store as kept

    kept.read(engine, store)
    before = kept.dump(engine)
    try:
        yield
    finally:
        if kept.dump(engine) != before:
            kept.write(engine, store)


def is_loopback_host(host: str) -> bool:
    # The emulator must not import sprunner.api, so this is its own small copy of the check.
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
