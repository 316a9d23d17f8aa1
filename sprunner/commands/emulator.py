"""`sprunner emulator`: serve the local stand-in of the API in the foreground until Ctrl-C."""

from __future__ import annotations

from collections.abc import Sequence

from sprunner.errors import EXIT_OK, UsageError
from sprunner.ui import Output


def run(
    *,
    output: Output,
    host: str,
    port: int,
    api_key: str,
    mode: str,
    faults: Sequence[str],
    seed: int,
    run_seconds: float = 1.0,
    fetch_timeout: float = 10.0,
    fetch_concurrency: int = 16,
) -> int:
    # Imported here: starlette and uvicorn are not needed by any other command.
    from sprunner.emulator.engine import Engine
    from sprunner.emulator.faults import Faults, FaultSpecError
    from sprunner.emulator.server import bind, is_loopback_host, make_server, url_for

    if mode not in ("fetch", "simulate"):
        raise UsageError(f"--mode must be fetch or simulate, got {mode!r}")
    try:
        active = Faults(faults, seed=seed)
    except FaultSpecError as error:
        raise UsageError(f"--fault: {error}") from None
    engine = Engine(
        mode="fetch" if mode == "fetch" else "simulate",
        run_seconds=run_seconds,
        fetch_timeout=fetch_timeout,
        fetch_concurrency=fetch_concurrency,
    )
    try:
        sock = bind(host, port)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    url = url_for(host, sock.getsockname()[1])
    if not is_loopback_host(host):
        output.warn(f"serving on {host}, which is not loopback")
    output.note(f"sprunner emulator ({mode}) listening on {url}")
    output.note(f"  SCRAPINGPROS_API_URL={url}")
    output.note(f"  SCRAPINGPROS_API_KEY={api_key}")
    for fault in active.active:
        output.note(f"  fault: {fault}")
    server = make_server(engine, active, api_key=api_key, log_level="info")
    try:
        server.run(sockets=[sock])  # uvicorn handles SIGINT/SIGTERM in the main thread
    finally:
        sock.close()
    return EXIT_OK
