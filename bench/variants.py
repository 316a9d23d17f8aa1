"""sprunner with one thing changed, for benchmarks that compare against what was not chosen.

    python -m bench.variants VARIANT [sprunner arguments...]

- `aiohttp`: the API client's httpx client sends through httpx-aiohttp's transport
  (aiohttp's connection pool and C parser) instead of httpx's own (httpcore). Needs
  `pip install httpx-aiohttp`. This is the alternative issue #23 asked to measure; it is not
  shipped (bench/README.md, "One HTTP path").
- `fixed-window`: the window of calls in flight starts at `--parallel` and is never cut
  (issue #28's "window fixed at --parallel" comparison).
- `no-learning`: the rate limiter never cuts its rate (on a 429 or a budget running low):
  it only pauses for `Retry-After` and follows the stated `X-RateLimit-*` rate (issue #23
  asks whether the four-processes benchmark needs the learning).
- `no-catch-up`: a rate slot nobody took in time is lost (the limiter before issue #28).
- `no-priorities`: every waiting call is served in arrival order (no polls / starts /
  creates classes in `api/window.py`).
- `ungated`: requests enter httpcore's pool without `httpclient.PoolGate` (before it: several
  requests handed one idle connection, all but one going round the pool again).
- `keepalive-5s`: idle connections kept 5 s (httpx's default) instead of `KEEPALIVE_EXPIRY`.
- `pool-before`: both of the above (the HTTP path as it was before the CPU work of #28).
- `no-fsync`: the SQLite state store never syncs a commit (synchronous=NORMAL for all):
  NOT safe (a power cut could lose a commit the never-twice rules stand on); it shows what
  the inline fsyncs of durable commits cost an apply's wall, as they block the event loop.
- `started-synced`: the run id recorded with an fsync of its own (synchronous=FULL), as
  before it rode on the next durable commit.
- `production`: sprunner unchanged (so both sides of a comparison start the same way).

Nothing here is imported by sprunner: the variants patch it from outside, in this process.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any


def _aiohttp() -> None:
    import httpx
    from httpx_aiohttp import HttpxAiohttpClient

    from sprunner.api import httpclient

    def new_client(
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.AsyncClient:
        client: Any = HttpxAiohttpClient(
            base_url=base_url,
            headers=dict(headers),
            transport=transport,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            follow_redirects=False,
            trust_env=True,
        )
        return client  # type: ignore[no-any-return]

    httpclient.new_client = new_client  # type: ignore[assignment]


def _fixed_window() -> None:
    from sprunner.api import window

    window.CONGESTION_CUT = 1.0
    original = window.CallWindow.__init__

    def start_at_cap(self: window.CallWindow, cap: int, **kw: Any) -> None:
        original(self, cap, **{**kw, "start": cap})

    window.CallWindow.__init__ = start_at_cap  # type: ignore[method-assign]


def _no_learning() -> None:
    from sprunner.api import limiter

    limiter.RateLimiter._cut = lambda self, now: None  # type: ignore[method-assign]


def _no_catch_up() -> None:
    from sprunner.api import limiter

    limiter.RateLimiter._catch_up = lambda self, rate: 0.0  # type: ignore[method-assign]


def _no_priorities() -> None:
    from sprunner.api import exchange, window

    exchange.priority_of = lambda call, rate_bound=False: window.WRITE  # type: ignore[assignment]


def _ungated() -> None:
    import httpx

    from sprunner.api import httpclient

    async def send(
        self: httpclient.PoolGate, client: httpx.AsyncClient, request: httpx.Request
    ) -> Any:
        return await client.send(request, stream=True)

    httpclient.PoolGate.send = send  # type: ignore[method-assign]


def _keepalive_5s() -> None:
    from sprunner.api import httpclient

    httpclient.KEEPALIVE_EXPIRY = 5.0


def _pool_before() -> None:
    _ungated()
    _keepalive_5s()


def _no_fsync() -> None:
    from sprunner.state import sqlite

    original = sqlite.State._synchronous

    def never_full(self: sqlite.State, full: bool) -> None:
        original(self, False)

    sqlite.State._synchronous = never_full  # type: ignore[method-assign]


def _started_synced() -> None:
    from dataclasses import replace

    from sprunner.state import lifecycle

    def run_started(store: Any, name: str, run_id: str, pending: Any) -> Any:
        record = replace(pending, run_id=run_id)
        lifecycle._started(store, name, record, durable=True)
        return record

    lifecycle.run_started = run_started


VARIANTS = {
    "started-synced": _started_synced,
    "no-fsync": _no_fsync,
    "ungated": _ungated,
    "keepalive-5s": _keepalive_5s,
    "pool-before": _pool_before,
    "no-priorities": _no_priorities,
    "no-catch-up": _no_catch_up,
    "aiohttp": _aiohttp,
    "fixed-window": _fixed_window,
    "no-learning": _no_learning,
    "production": lambda: None,
}


def main() -> None:
    variant, *args = sys.argv[1:]
    VARIANTS[variant]()
    from sprunner.cli.app import main as sprunner

    sys.argv = ["sprunner", *args]
    sys.exit(sprunner())


if __name__ == "__main__":
    main()
