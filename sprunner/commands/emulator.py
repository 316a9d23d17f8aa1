"""`sprunner emulator`: serve the local stand-in of the API in the foreground until Ctrl-C.

Off loopback it refuses to start without a key of the user's own (`--api-key` or
`SPRUNNER_EMULATOR_API_KEY`): the documented demo key would open it to anyone. A key the
user chose is never printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sprunner.errors import EXIT_OK, UsageError
from sprunner.output.ui import Output

if TYPE_CHECKING:
    from sprunner.emulator.faults import Faults
    from sprunner.emulator.latency import Latency

DEMO_KEY = "emulator-key"


def _key_for(host: str, api_key: str | None) -> str:
    from sprunner.emulator.server import is_loopback_host

    if is_loopback_host(host):
        return api_key or DEMO_KEY
    if not api_key or api_key == DEMO_KEY:
        raise UsageError(
            f"refusing to serve on {host}, which is not loopback, without a key of your own: "
            "pass --api-key (or set SPRUNNER_EMULATOR_API_KEY)"
        )
    return api_key


def _faults(specs: Sequence[str], latency: str | None, seed: int) -> tuple[Faults, Latency | None]:
    from sprunner.emulator.faults import Faults, FaultSpecError
    from sprunner.emulator.latency import LatencySpecError, parse_latency

    try:
        active = Faults(specs, seed=seed)
    except FaultSpecError as error:
        raise UsageError(f"--fault: {error}") from None
    try:
        return active, None if latency is None else parse_latency(latency, seed=seed)
    except LatencySpecError as error:
        raise UsageError(f"--latency: {error}") from None


def run(
    *,
    output: Output,
    host: str,
    port: int,
    api_key: str | None,
    mode: str,
    faults: Sequence[str],
    seed: int,
    run_seconds: float = 1.0,
    fetch_timeout: float = 10.0,
    fetch_concurrency: int = 16,
    result_retention: float = 24 * 3600.0,
    allow_private: bool = False,
    latency: str | None = None,
) -> int:
    # Imported here: starlette and uvicorn are not needed by any other command.
    from sprunner.emulator.engine import Engine
    from sprunner.emulator.server import bind, make_server, url_for

    if mode not in ("fetch", "simulate"):
        raise UsageError(f"--mode must be fetch or simulate, got {mode!r}")
    key = _key_for(host, api_key)
    active, answer_time = _faults(faults, latency, seed)
    engine = Engine(
        mode="fetch" if mode == "fetch" else "simulate",
        run_seconds=run_seconds,
        fetch_timeout=fetch_timeout,
        fetch_concurrency=fetch_concurrency,
        result_retention=result_retention,
        allow_private=allow_private,
    )
    try:
        sock = bind(host, port)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    url = url_for(host, sock.getsockname()[1])
    output.note(f"sprunner emulator ({mode}) listening on {url}")
    output.note(f"  SCRAPINGPROS_API_URL={url}")
    shown = key if key == DEMO_KEY else "<the key given with --api-key>"
    output.note(f"  SCRAPINGPROS_API_KEY={shown}")
    if mode == "fetch" and allow_private:
        output.warn("--allow-private: fetches loopback and private targets")
    for fault in active.active:
        output.note(f"  fault: {fault}")
    if answer_time is not None:
        output.note(f"  latency: {answer_time}")
    server = make_server(engine, active, api_key=key, log_level="info", latency=answer_time)
    try:
        server.run(sockets=[sock])  # uvicorn handles SIGINT/SIGTERM in the main thread
    finally:
        sock.close()
    return EXIT_OK
