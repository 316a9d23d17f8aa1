"""Shared by the retry end-to-end tests (SPEC §8): job files, the emulator, look-ups.

Simulate mode decides outcomes by words in the URL: `flaky` fails the first attempt of a
request (counted per (url, custom_id) across every collection of the emulator) and succeeds
later, `flaky2` the first two, `fail` always fails, `timeout` always times out, and a flaky
URL that also says `timeout` times out while it is flaky.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner

FLAKY = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/ok
      - url: https://shop.example.com/flaky
        custom_id: a
      - url: https://shop.example.com/flaky2
    run:
      poll_interval: 0.1s
      retry:
        attempts: 2
"""


FAILING = """
version: 1
collections:
  - name: news
    requests:
      - url: https://news.example.com/
      - url: https://news.example.com/fail
        custom_id: broken
      - url: https://news.example.com/flaky
    run:
      poll_interval: 0.1s
      retry:
        attempts: 2
"""


NO_RETRY = FAILING.replace("      retry:\n        attempts: 2\n", "")


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def runs_of(sprunner: Sprunner, name: str) -> list[str]:
    """The emulator's run ids of the collection `name`, oldest first."""
    engine = sprunner.emulator.engine
    ids = {c.id for c in engine.collections.values() if c.name == name}
    runs = [r for r in engine.runs.values() if r.collection_id in ids]
    return [r.run_id for r in sorted(runs, key=lambda r: r.created_at)]


def retries(run: dict[str, Any]) -> list[tuple[int, str, int, int]]:
    return [
        (r["attempt"], r["status"], r["requests"], r["success_requests"]) for r in run["retries"]
    ]


def ledger_of(sprunner: Sprunner, name: str) -> Any:
    from sprunner.state import State

    return State(sprunner.state_dir, sprunner.emulator.url, persist=False).get_blob(name, "retry")


def retry_run_recorded(sprunner: Sprunner, name: str) -> bool:
    from tests.e2e.subprocess_helpers import recorded

    entry = recorded(sprunner).get(name)
    return entry is not None and entry.inflight is not None and entry.inflight.run_id is not None
