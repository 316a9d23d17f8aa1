"""The emulator under hostile use (issue #12, points 7-9): a public bind without a key of
one's own, fetch mode as a server-side request forgery or a port scanner, huge and deep
bodies. Over real sockets, and `sprunner emulator` as a real subprocess."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.emulator_helpers import PREFIX, all_jobs, http, start, wait_done
from tests.sites import Site, refused_url

DEADLINE = 20.0


def sprunner_emulator(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sprunner", "emulator", *args],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "0.0.0.0"], {}),
        (["--host", "0.0.0.0", "--api-key", "emulator-key"], {}),
        (["--host", "::"], {"SPRUNNER_EMULATOR_API_KEY": ""}),
    ],
)
def test_refuses_to_serve_off_loopback_without_a_key_of_its_own(
    args: list[str], env: dict[str, str]
) -> None:
    process = sprunner_emulator(*args, "--port", "0", env=env)
    try:
        _, err = process.communicate(timeout=DEADLINE)
    finally:
        process.kill()  # only if it is (wrongly) serving
        process.wait()
    assert process.returncode == 2, err
    assert "not loopback" in err and "--api-key" in err and "Traceback" not in err


@contextmanager
def served(*args: str) -> Iterator[tuple[str, str]]:
    """`sprunner emulator --port 0 ARGS` in a subprocess: yields its URL and the stderr
    read so far."""
    process = sprunner_emulator("--port", "0", *args)
    assert process.stderr is not None
    try:
        lines = []
        deadline = time.monotonic() + DEADLINE
        while not any("SCRAPINGPROS_API_KEY" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stderr.readline())
        (url,) = re.findall(r"SCRAPINGPROS_API_URL=(\S+)", "".join(lines))
        yield url, "".join(lines)
    finally:
        process.terminate()
        process.communicate(timeout=DEADLINE)  # also closes the pipes


def test_the_command_never_prints_a_key_given_to_it() -> None:
    with served("--api-key", "s3cret-key-value") as (_, err):
        assert "s3cret-key-value" not in err


def fetch_outcomes(handle: EmulatorHandle, urls: list[str]) -> dict[str, dict[str, Any]]:
    with http(handle) as client:
        run = start(client, [{"url": u} for u in urls])
        wait_done(client, run)
        return {j["url"]: j for j in all_jobs(client, run)}


def test_fetch_mode_refuses_loopback_targets_alike_whatever_the_port(target_site: Site) -> None:
    open_port, closed_port = f"{target_site.url}/ok", refused_url()
    by_name = open_port.replace("127.0.0.1", "localhost") + "?by-name"
    hits = len(target_site.hits)
    with running_emulator(mode="fetch", fetch_timeout=2) as handle:
        jobs = fetch_outcomes(handle, [open_port, closed_port, by_name])
    assert {j["status"] for j in jobs.values()} == {"failed"}
    messages = {url: job["message"] for url, job in jobs.items()}
    assert "--allow-private" in messages[open_port]
    # The same words for an open and a closed port: nothing to scan ports with.
    assert messages[open_port] == messages[closed_port]
    assert "localhost" in messages[by_name]
    assert len(target_site.hits) == hits, "a refused target is never connected to"


def test_allow_private_fetches_loopback_targets(target_site: Site) -> None:
    with running_emulator(mode="fetch", fetch_timeout=2, allow_private=True) as handle:
        jobs = fetch_outcomes(handle, [f"{target_site.url}/ok"])
    assert [j["status"] for j in jobs.values()] == ["completed"]


def test_the_command_refuses_private_targets_by_default(target_site: Site) -> None:
    hits = len(target_site.hits)
    with served("--mode", "fetch") as (url, _):
        handle = EmulatorHandle(url, "emulator-key", None, None, "", 0)  # type: ignore[arg-type]
        jobs = fetch_outcomes(handle, [f"{target_site.url}/ok"])
    (job,) = jobs.values()
    assert job["status"] == "failed" and "--allow-private" in job["message"]
    assert len(target_site.hits) == hits


def raw_call(handle: EmulatorHandle, head: str, body: bytes) -> bytes:
    """Send a request's head and the start of its body; return what the server answers."""
    with socket.create_connection((handle.host, handle.port), timeout=5) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + body)
        return sock.recv(4096)


def test_a_wrong_key_is_answered_before_the_body_is_read(emulator: EmulatorHandle) -> None:
    head = f"POST {PREFIX} HTTP/1.1\nHost: x\nAuthorization: Bearer wrong\n"
    head += "Content-Type: application/json\nContent-Length: 300000000\n\n"
    answer = raw_call(emulator, head, b"[" * 1000)  # 300 MB promised, 1 KB sent
    assert answer.startswith(b"HTTP/1.1 401")


def test_bodies_over_the_cap_are_413(emulator: EmulatorHandle) -> None:
    key = emulator.api_key
    head = f"POST {PREFIX} HTTP/1.1\nHost: x\nAuthorization: Bearer {key}\n"
    declared = head + "Content-Length: 300000000\n\n"
    assert raw_call(emulator, declared, b"{").startswith(b"HTTP/1.1 413")


def test_chunked_bodies_over_the_cap_are_413_and_the_emulator_goes_on() -> None:
    with running_emulator(max_body_bytes=100_000) as handle:
        head = f"POST {PREFIX} HTTP/1.1\nHost: x\nAuthorization: Bearer {handle.api_key}\n"
        chunk = b"%x\r\n%s\r\n" % (50_000, b" " * 50_000)
        answer = raw_call(handle, head + "Transfer-Encoding: chunked\n\n", chunk * 3)
        assert answer.startswith(b"HTTP/1.1 413")
        with http(handle) as client:
            body = {"name": "a", "requests": [{"url": "https://x.test/"}]}
            assert client.post(PREFIX, json=body).status_code == 201


@pytest.mark.parametrize("depth", [100, 200_000])
def test_deeply_nested_bodies_are_422_without_a_traceback(
    emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    nested = "[" * depth + "]" * depth
    raw = '{"name": "a", "requests": [{"url": "https://x.test/", "extract": NESTED}]}'
    raw = raw.replace("NESTED", nested)
    with caplog.at_level(logging.ERROR), http(emulator) as client:
        answer = client.post(PREFIX, content=raw, headers={"Content-Type": "application/json"})
        alive = client.get(PREFIX)
    assert answer.status_code == 422 and "nested too deep" in answer.json()["detail"]
    assert alive.status_code == 200 and emulator.engine.collections == {}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_refused_calls_keep_the_connection_usable(emulator: EmulatorHandle) -> None:
    """A small body on a refused call is read and dropped: the next call on the same
    connection works (clients reuse connections)."""
    body = {"name": "a", "requests": [{"url": "https://x.test/"}]}
    with httpx.Client(base_url=emulator.url) as client:
        bad = client.post(PREFIX, json=body, headers={"Authorization": "Bearer wrong"})
        good = client.post(
            PREFIX, json=body, headers={"Authorization": f"Bearer {emulator.api_key}"}
        )
    assert (bad.status_code, good.status_code) == (401, 201)
