"""`--ping URL` against real HTTP servers on 127.0.0.1 (`tests/monitor.py`): one that
answers, one that hangs, one that answers a gzip bomb, and a port where nothing listens."""

from __future__ import annotations

import socket
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator

import pytest

from sprunner.errors import UsageError
from sprunner.report.ping import MAX_ANSWER, Pinger, masked, ping_url
from tests.monitor import Monitor

SECRET = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"
APPLY_ID = uuid.uuid4().hex
RID = str(uuid.UUID(APPLY_ID))


@pytest.fixture
def serve() -> Iterator[Callable[..., Monitor]]:
    monitors: list[Monitor] = []

    def make(**kwargs: object) -> Monitor:
        monitor = Monitor(**kwargs).__enter__()  # type: ignore[arg-type]
        monitors.append(monitor)
        return monitor

    yield make
    for monitor in monitors:
        monitor.__exit__()


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ping/{SECRET}"  # nothing listens there now


def _wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize(("code", "suffix"), [(0, ""), (1, "/1"), (3, "/3"), (143, "/143")])
def test_start_then_the_exit_code_with_the_run_id_and_the_summary(
    serve: Callable[..., Monitor], code: int, suffix: str
) -> None:
    monitor = serve()
    warnings: list[str] = []
    pinger = Pinger(monitor.url(SECRET) + "/", warn=warnings.append, rid=APPLY_ID)
    pinger.start()
    pinger.finish(code, body="exit code 1\nFAILED shop: 2 of 4 jobs failed\n")
    start, end = monitor.pings
    assert (start.method, start.path, start.query, start.body) == (
        "GET",
        f"/ping/{SECRET}/start",
        {"rid": RID},
        "",
    )
    assert (end.method, end.path, end.query) == ("POST", f"/ping/{SECRET}{suffix}", {"rid": RID})
    assert end.body == "exit code 1\nFAILED shop: 2 of 4 jobs failed\n"
    assert warnings == []


def test_the_query_string_is_kept_and_rid_added() -> None:
    url = f"https://hc-ping.com/{SECRET}/nightly?create=1"
    assert ping_url(url, "start", rid=RID) == (
        f"https://hc-ping.com/{SECRET}/nightly/start?create=1&rid={RID}"
    )
    assert ping_url(url + "&rid=old", "", rid=RID) == (
        f"https://hc-ping.com/{SECRET}/nightly?create=1&rid={RID}"
    )
    assert ping_url(f"https://hc-ping.com/{SECRET}/", "2", rid=None) == (
        f"https://hc-ping.com/{SECRET}/2"
    )


def _peak_of_a_ping(monitor: Monitor) -> tuple[int, list[str]]:
    """Bytes allocated at the peak of one final ping to `monitor`, and the warnings."""
    warnings: list[str] = []
    pinger = Pinger(monitor.url(SECRET), warn=warnings.append, rid=APPLY_ID)
    tracemalloc.start()
    try:
        pinger.finish(0, body="ok\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, warnings


def test_a_gzip_bomb_answer_is_read_at_most_the_cap_and_never_decompressed(
    serve: Callable[..., Monitor],
) -> None:
    # What a ping costs anyway (an HTTP client, its TLS context), against "OK".
    plain, _ = _peak_of_a_ping(serve())
    # 256 MiB of zeros, about 256 KiB on the wire: decompressed, a quarter of a gigabyte.
    monitor = serve(answer="bomb", bomb_size=1 << 28)
    began = time.monotonic()
    peak, warnings = _peak_of_a_ping(monitor)
    assert time.monotonic() - began < 5.0
    assert warnings == []  # a 200: the ping went through
    assert peak < plain + 1024 * 1024, f"{peak - plain} bytes more than for a plain answer"
    assert len(monitor.bomb) > 10 * MAX_ANSWER  # far more was offered than was read


def test_a_hanging_server_neither_blocks_the_start_nor_holds_the_finish(
    serve: Callable[..., Monitor],
) -> None:
    monitor = serve(answer="hang")
    warnings: list[str] = []
    pinger = Pinger(monitor.url(SECRET), warn=warnings.append, bound=1.0, attempt_timeout=0.5)
    began = time.monotonic()
    pinger.start()
    assert time.monotonic() - began < 0.5  # the apply goes on at once
    _wait_for(lambda: monitor.pings)
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


def test_a_5xx_is_retried_once_and_a_4xx_is_not(serve: Callable[..., Monitor]) -> None:
    failing = serve(status=503)
    warnings: list[str] = []
    Pinger(failing.url(SECRET), warn=warnings.append).finish(0)
    assert [p.path for p in failing.pings] == [f"/ping/{SECRET}"] * 2
    assert warnings and "HTTP 503" in warnings[0]

    missing = serve(status=404)
    Pinger(missing.url(SECRET), warn=warnings.append).finish(0)
    assert [p.path for p in missing.pings] == [f"/ping/{SECRET}"]


def test_masking_and_url_checks() -> None:
    assert masked(f"https://user:pw@hc-ping.com/{SECRET}?rid=1") == "https://hc-ping.com/***"
    assert masked("http://[::1]:8000/x") == "http://[::1]:8000/***"
    assert SECRET not in repr(Pinger(f"https://hc-ping.com/{SECRET}", warn=print))
    for bad in ("hc-ping.com/x", "ftp://h/x", "https:///x"):
        with pytest.raises(UsageError):
            Pinger(bad, warn=print)
