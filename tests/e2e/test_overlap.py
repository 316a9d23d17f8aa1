"""An apply overlaps its phases: a collection's run starts while others are still being
created, and a poll that is due is not kept waiting behind the creates still queued.

The emulator answers every call after 50 ms (`slow`), and `--parallel 2` keeps two calls in
flight: the 40 creates alone take about a second, far longer than a run (0.5 s), so the
order in which calls arrive shows whether starts and polls go before the queued creates.
"""

from __future__ import annotations

from pathlib import Path

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job

COLLECTIONS = 40


def _job(directory: Path) -> Path:
    blocks = "".join(
        f"""
          - name: overlap-{index:02d}
            requests:
              - url: https://example.com/{index}/a
              - url: https://example.com/{index}/b
            run:
              poll_interval: 0.2s
              timeout: 5m
        """
        for index in range(COLLECTIONS)
    )
    return write_job(directory, "version: 1\ncollections:" + blocks.replace("\n        ", "\n"))


def test_starts_and_polls_go_before_the_creates_still_queued(tmp_path: Path) -> None:
    with running_emulator(mode="simulate", run_seconds=0.5, faults=["slow:0.05"]) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        result, report = sprunner.apply(_job(tmp_path), "--parallel", "2")
        timeline = list(emulator.engine.timeline)

    assert result.exit_code == 0, result.output
    runs = [c["run"] for c in report["collections"]]
    assert len(runs) == COLLECTIONS and all(r["status"] == "completed" for r in runs)
    arrivals: dict[str, list[float]] = {}
    for at, route in timeline:
        arrivals.setdefault(route, []).append(at)
    last_create = max(arrivals["create"])
    # Overlap: runs start while other collections are still being created. (When their
    # first poll comes depends on poll_interval against the pace of the creates: not asserted.)
    assert min(arrivals["run"]) < last_create
    # Each collection still costs its create, its start and its polls, nothing more.
    assert len(arrivals["create"]) == len(arrivals["run"]) == COLLECTIONS
