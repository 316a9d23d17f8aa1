"""What the apply benchmarks share: the workload, the emulator, figures and their table.

The workload (issue #6): COLLECTIONS collections of REQUESTS requests each, written as
job files; the emulator runs in simulate mode on loopback, in a thread of the benchmark
process, with runs lasting RUN_SECONDS. sprunner itself runs as a subprocess, exactly as
a user or a cron job would start it, so its wall time includes interpreter start-up.

API calls are counted on the emulator side (`engine.calls`: every call that arrived,
429s included), so no client can under-count itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

COLLECTIONS = 200
REQUESTS = 50
RUN_SECONDS = 3.0
RATE_LIMIT = 25.0
# A poll interval of 1 s: runs last 3 s, so the first poll lands a third of the way in, sees
# the pace, and the poller's pace estimate puts the second poll just after the end. The
# default (5 s) would make every run wait 5 s for its first poll: 2 s of pure waiting.
POLL_INTERVAL = "1s"
PER_FILE = 10

JOB = """\
version: 1
vars:
  site: https://shop{file}.example.com
collections:
{collections}
"""
COLLECTION = """\
  - name: bench-{index:04d}
    tags: [bench]
    requests:
      - url: "{{{{ site }}}}/c{index}/p/{{{{ page }}}}"
        custom_id: "c{index}-p{{{{ page }}}}"
        foreach:
          page: "{{{{ range({requests}) }}}}"
    run:
      poll_interval: {poll}
      timeout: 10m
"""


@dataclass(frozen=True)
class Figure:
    """One measured figure, with its target when it has one (ratio < 1 is within target)."""

    bench: str
    name: str
    value: float
    unit: str
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.target is None or self.target == 0 else self.value / self.target

    def line(self) -> str:
        value = f"{self.value:,.2f} {self.unit}".strip()
        if self.target is None:
            target = ratio = "-"
        else:
            target = f"{self.target:,.2f} {self.unit}".strip()
            ratio = f"{self.ratio:.2f}"
        note = f"  ({self.note})" if self.note else ""
        return f"{self.bench:<14} {self.name:<44} {value:>16} {target:>16} {ratio:>6}{note}"


def header() -> str:
    return f"{'bench':<14} {'figure':<44} {'value':>16} {'target':>16} {'ratio':>6}"


def print_figures(figures: Iterable[Figure]) -> None:
    print(header())
    for figure in figures:
        print(figure.line())
    sys.stdout.flush()


def write_jobfiles(
    folder: Path,
    *,
    collections: int = COLLECTIONS,
    requests: int = REQUESTS,
    poll: str = POLL_INTERVAL,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file_index, start in enumerate(range(0, collections, PER_FILE)):
        body = "".join(
            COLLECTION.format(index=i, requests=requests, poll=poll)
            for i in range(start, min(collections, start + PER_FILE))
        )
        text = JOB.format(file=file_index, collections=body.rstrip("\n"))
        (folder / f"bench{file_index:03d}.yaml").write_text(text + "\n")
    return folder


def urls(index: int, requests: int = REQUESTS) -> list[dict[str, str]]:
    """The requests of collection `index`, as the job files expand them (for other clients)."""
    site = f"https://shop{index // PER_FILE}.example.com"
    return [
        {"url": f"{site}/c{index}/p/{page}", "custom_id": f"c{index}-p{page}"}
        for page in range(requests)
    ]


@dataclass(frozen=True)
class Applied:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run_sprunner(
    url: str,
    api_key: str,
    state_dir: Path,
    *args: str,
    timeout: float = 600.0,
    runner: tuple[str, ...] = ("-m", "sprunner"),
) -> Applied:
    """`sprunner --api-url URL --state-dir DIR ARGS...` in a subprocess, timed.

    Its output goes to files, not pipes: reading a pipe woke this process's main thread at
    every log line, and each wake took the GIL from the emulator's thread (in this process)
    for up to a switch interval, slowing the emulator, not sprunner (1,000 collections:
    9.7 s against 8.1 s with the emulator in a process of its own).

    `runner`: what `python` runs instead of `-m sprunner` (a benchmark's variant of sprunner,
    e.g. `-m bench.variants aiohttp`)."""
    env = {**os.environ, "SCRAPINGPROS_API_KEY": api_key, "NO_COLOR": "1"}
    command = [sys.executable, *runner, "--api-url", url, "--state-dir", str(state_dir)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        done = subprocess.run(
            [*command, *args], stdout=out, stderr=err, text=True, env=env, timeout=timeout
        )
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Applied(seconds, done.returncode, out.read(), err.read())


def total_calls(counter: dict[str, int]) -> int:
    return sum(counter.values())
