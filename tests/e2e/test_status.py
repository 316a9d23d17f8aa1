"""`sprunner status` end to end: the CLI against the emulator over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import Sprunner, write_job

JOBS = """
version: 1
collections:
  - name: shop
    requests:
      - url: "https://shop.example.com/c/{{ cat }}"
        foreach:
          cat: [shoes, hats]
        browser: true
    run:
      poll_interval: 0.2s
      schedule: "0 */6 * * *"
  - name: blog
    requests:
      - url: https://blog.example.com/
      - url: https://blog.example.com/fail
    run:
      poll_interval: 0.2s
      max_failed: 1
  - name: archive
    requests:
      - url: https://archive.example.com/
    run:
      when: never
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.3) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path)


def _status(sprunner: Sprunner, job: Path, *args: str) -> dict[str, Any]:
    result = sprunner("status", str(job), "--json", *args)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return {c["name"]: c for c in document["collections"]}


def test_status_after_an_apply_shows_the_runs(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, JOBS)
    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    ran = {c["name"]: c for c in report["collections"]}

    sprunner.reset_calls()
    status = _status(sprunner, job)
    # Read-only: one list, then the runs of each collection; nothing written.
    assert sprunner.calls() == {"list": 1, "list_runs": 3}
    assert list(status) == ["shop", "blog", "archive"]

    shop, blog, archive = status["shop"], status["blog"], status["archive"]
    assert shop["remote_id"] == ran["shop"]["collection_id"]
    (run,) = shop["runs"]
    assert run["run_id"] == ran["shop"]["run"]["run_id"]
    assert (run["status"], run["success_requests"], run["total_requests"]) == ("completed", 2, 2)
    assert run["credits"] == 10  # 2 successful browser requests x 5
    assert shop["pending_change"] is False and shop["in_flight"] is None
    started = datetime.fromisoformat(run["created_at"].replace("Z", "+00:00"))
    next_at = datetime.fromisoformat(shop["next_run"]["at"].replace("Z", "+00:00"))
    assert next_at > started and next_at.hour % 6 == 0 and next_at.minute == 0
    assert next_at.tzinfo == timezone.utc

    (blog_run,) = blog["runs"]
    assert (blog_run["failed_requests"], blog_run["credits"], blog_run["success_ratio"]) == (
        1,
        1,
        0.5,
    )
    assert blog["next_run"]["reason"] == "at the next apply"
    assert archive["runs"] == [] and archive["next_run"]["at"] is None

    text = sprunner("status", str(job))
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("COLLECTION")
    assert ran["shop"]["run"]["run_id"] in text.stdout
    assert "TREND" not in lines[0]  # not a terminal: no sparkline


def test_status_shows_a_pending_change_and_more_runs(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, JOBS)
    for _ in range(2):
        result, _report = sprunner.apply(job, "--select", "blog")
        assert result.exit_code == 0, result.output
    write_job(tmp_path, JOBS.replace("https://blog.example.com/fail", "https://blog.example.com/b"))

    status = _status(sprunner, job)
    assert status["blog"]["pending_change"] is True
    assert len(status["blog"]["runs"]) == 2
    assert status["blog"]["runs"][0]["created_at"] >= status["blog"]["runs"][1]["created_at"]
    assert len(_status(sprunner, job, "--runs", "1")["blog"]["runs"]) == 1
    # Not applied yet: no remote id, and the next apply creates it.
    assert status["shop"]["remote_id"] is None and status["shop"]["pending_change"] is True


def test_status_shows_a_run_in_flight(tmp_path: Path) -> None:
    with running_emulator(mode="simulate", run_seconds=60) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path)
        job = write_job(tmp_path, JOBS)
        result, report = sprunner.apply(job, "--no-run", "--select", "blog")
        assert result.exit_code == 0, result.output
        (blog,) = report["collections"]
        started = httpx.post(
            f"{emulator.url}/v1/async/collections/{blog['collection_id']}/run",
            headers={"Authorization": f"Bearer {emulator.api_key}"},
        )
        assert started.status_code == 201
        run_id = started.json()["run_id"]

        status = _status(sprunner, job)["blog"]
        assert status["in_flight"]["run_id"] == run_id
        assert status["in_flight"]["success_ratio"] is None
        assert "waits for the run in flight" in status["next_run"]["reason"]
        text = sprunner("status", str(job), "--select", "blog")
        assert run_id in text.stdout and "in progress" in text.stdout


def test_status_without_a_usable_api_exits_3(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, JOBS)
    result = sprunner("status", str(job), key="wrong-key")
    assert result.exit_code == 3
    assert "wrong-key" not in result.output


def test_status_on_a_terminal_draws_the_success_sparkline(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    import os
    import pty
    import subprocess
    import sys

    from sprunner.output.statusview import SPARKS

    job = write_job(tmp_path, JOBS)
    for _ in range(2):
        result, _report = sprunner.apply(job, "--select", "blog")
        assert result.exit_code == 0, result.output
    leader, follower = pty.openpty()
    env = {**os.environ, "SCRAPINGPROS_API_KEY": sprunner.emulator.api_key, "NO_COLOR": "1"}
    command = [
        sys.executable,
        *("-m", "sprunner", "--api-url", sprunner.emulator.url),
        *("--state-dir", str(sprunner.state_dir), "status", str(job), "--select", "blog"),
    ]
    try:
        process = subprocess.run(
            command, stdout=follower, stderr=subprocess.PIPE, env=env, timeout=60, check=False
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    assert process.returncode == 0, process.stderr
    screen = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    header, blog = screen.splitlines()[:2]
    assert header.rstrip().endswith("TREND")
    assert blog.rstrip().endswith(SPARKS[4] * 2)  # two runs, each 1 of 2 requests ok
