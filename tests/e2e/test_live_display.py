"""The live display on a real pseudo-terminal: bounded, redrawn at a fixed rate whatever the
number of log lines, and gone from the screen when the apply ends."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from bench.terminal import run_in_pty, screen
from sprunner.emulator.server import running_emulator
from sprunner.output.liveview import REFRESH_S, ROWS

COLLECTIONS = 40


def _jobs(folder: Path) -> Path:
    entries = "".join(
        f"""
  - name: live-{i:03d}
    requests:
      - url: "https://s.example/{i}/{{{{ p }}}}"
        foreach: {{p: "{{{{ range(5) }}}}"}}
    run: {{poll_interval: 0.5s}}
"""
        for i in range(COLLECTIONS)
    )
    path = folder / "jobs.yaml"
    path.write_text("version: 1\ncollections:" + entries)
    return path


def test_the_display_is_bounded_cheap_and_leaves_nothing_behind(tmp_path: Path) -> None:
    job = _jobs(tmp_path)
    with running_emulator(mode="simulate", run_seconds=1.5) as emulator:
        env = {**os.environ, "SCRAPINGPROS_API_KEY": emulator.api_key, "NO_COLOR": "1"}
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        done = run_in_pty(
            [sys.executable, "-m", "sprunner", "--api-url", emulator.url, "apply", str(job)],
            env=env,
            cwd=str(tmp_path),
            columns=100,
            timeout=120,
        )
    assert done.returncode == 0, done.output
    frames = done.output.count("] runs ")  # one per drawing of the aggregate bar
    log_lines = done.output.count(" started\r\n")
    assert frames >= 2 and log_lines >= COLLECTIONS
    # Redrawn on a clock, not per log line: at most one frame a tick (plus the first).
    assert frames <= done.seconds / REFRESH_S + 2
    # Bounded: never more than the bar and ROWS runs at once (the erase names the height).
    heights = [int(n) for n in re.findall(r"\x1b\[(\d+)F\x1b\[J", done.output)]
    assert heights and max(heights) <= 1 + ROWS
    # Nothing stale: the screen left behind holds log lines and the summary, no display row.
    shown = screen(done.output)
    assert not [line for line in shown if "] runs " in line or "(0 failed)" in line], shown
    assert any(line.startswith("Apply complete: 40 created") for line in shown)
    assert sum(" completed: 5/5 ok" in line for line in shown) == COLLECTIONS
    assert all(len(line) < 100 for line in shown if line.startswith("["))
