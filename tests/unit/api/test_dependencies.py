"""httpcore imports `sniffio` each time it takes a lock; the import must succeed (issue #17).

anyio >= 4.16 no longer installs sniffio, and a failed import is not cached: every lock
searched sys.path again (14,000 times, 2.5 s at 1,000 collections). sprunner declares the
dependency; this counts, over real sockets, how often the import machinery is asked.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

from sprunner.api.client import ApiClient

from .helpers import run

ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
    b"connection: close\r\n\r\n[]"
)
CALLS = 30


class SniffioLookups(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.count = 0

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "sniffio":
            self.count += 1
        return None  # only counting: the real finders still do the work


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(ANSWER)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_sniffio_is_looked_up_at_most_once_however_many_calls() -> None:
    lookups = SniffioLookups()

    async def go() -> None:
        server = await asyncio.start_server(_serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with ApiClient(base_url=f"http://127.0.0.1:{port}", api_key=None) as api:
                for _ in range(CALLS):
                    assert await api.list_collections() == []
        finally:
            server.close()
            await server.wait_closed()

    sys.meta_path.insert(0, lookups)
    try:
        run(go())
    finally:
        sys.meta_path.remove(lookups)
    # Installed: found once, then served from sys.modules. Missing: searched on every lock.
    assert lookups.count <= 1, f"sniffio searched {lookups.count} times in {CALLS} calls"


def test_sniffio_is_a_declared_dependency() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    assert any(d.split(">")[0].split("=")[0].strip() == "sniffio" for d in dependencies)
