"""Retrying failed jobs end to end (SPEC §8): the CLI against the emulator over sockets.

Simulate mode decides outcomes by words in the URL: `flaky` fails the first attempt of a
request (counted per (url, custom_id) across every collection of the emulator) and succeeds
later, `flaky2` the first two, `fail` always fails, `timeout` always times out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job

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


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def test_flaky_jobs_that_succeed_on_retry_make_the_apply_ok(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    result, report = sprunner.apply(write_job(tmp_path, FLAKY))
    assert result.exit_code == 0, result.output
    assert report["ok"] is True
    run = report["collections"][0]["run"]
    assert (run["success_requests"], run["failed_requests"]) == (1, 2)
    assert [(r["attempt"], r["status"], r["requests"], r["success_requests"]) for r in run["retries"]] == [
        (1, "completed", 2, 1),
        (2, "completed", 1, 1),
    ]
    assert all(r["run_id"] for r in run["retries"])
    assert run["final"]["success_requests"] == 3
    assert run["final"]["failed_jobs"] == []
    assert run["credits"] == 3 + 2 + 1
    assert report["summary"]["credits"] == 6
    assert report["summary"]["retries"] == 2
    # The companion holds exactly the last retry's requests.
    assert sprunner.remote()["shop.retry"] == [[{"url": "https://shop.example.com/flaky2"}]]
