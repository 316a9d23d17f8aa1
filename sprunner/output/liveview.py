"""The progress of an apply while it waits: a live display on a terminal, periodic lines
otherwise (SPEC §9).

Why not a rich `Live` table: it re-rendered the whole table for every log line (through
`redirect_stderr`) and grew with the collections; on a pseudo-terminal 300 collections
took 50 times longer than without one, and rows taller than the screen were left in the
scrollback. Here:

- the display is a fixed number of lines: one aggregate bar (collections reconciled, runs
  done, requests done, credits) and at most `ROWS` of the slowest runs, each cut to the
  terminal's width so that no line wraps (a wrapped line would break the cursor
  arithmetic and leave stale rows behind);
- it is redrawn by one thread at a fixed low rate (`REFRESH_S`), from the runner's frozen
  snapshots; a log line only erases the display (one escape sequence) and is printed in
  its place: the next tick draws the display again below it. So the cost per log line is
  constant and the cost per second does not depend on the number of log lines;
- on exit the display is erased: nothing stale is left above the closing summary.

Not on a terminal, `Ticker` writes one progress line every `interval` seconds (30 by
default, injectable) through the output's log path, so it is timestamped or JSON like any
other line.

`totals` and `frame` are pure functions of snapshots: unit-testable without a terminal.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from sprunner.report.outcome import Progress

ROWS = 5
REFRESH_S = 0.5
BAR_WIDTH = 20
PROGRESS_INTERVAL_S = 30.0
_ERASE = "\x1b[{n}F\x1b[J"  # up n lines to column 0, then clear to the end of the screen

Snapshot = Callable[[], Sequence["Progress"]]


@dataclass(frozen=True)
class Totals:
    collections: int
    reconciled: int
    runs: int  # runs wanted, started or adopted (skipped ones excluded)
    runs_done: int
    requests: int  # requests of the runs seen so far
    requests_done: int
    failed: int  # failed + timed out so far
    credits: int

    def line(self) -> str:
        """The words of the progress line (no bar)."""
        # Most telling first: on a narrow terminal the end of the line is cut.
        return (
            f"runs {self.runs_done}/{self.runs} done, requests {self.requests_done}/"
            f"{self.requests} done ({self.failed} failed), credits {self.credits}, "
            f"collections {self.reconciled}/{self.collections} reconciled"
        )


def totals(rows: Sequence[Progress]) -> Totals:
    reconciled = runs = runs_done = requests = done = failed = credits = 0
    for row in rows:
        reconciled += row.action is not None
        if row.run_state is not None and row.run_state != "skipped":
            runs += 1
            runs_done += row.run_state != "in_progress"
        credits += row.credits
        run = row.run
        if run is not None:
            bad = run.failed_requests + run.timeout_requests
            requests += run.total_requests
            done += run.success_requests + bad
            failed += bad
    return Totals(len(rows), reconciled, runs, runs_done, requests, done, failed, credits)


def _fraction(row: Progress) -> float:
    run = row.run
    if run is None or not run.total_requests:
        return 0.0
    finished = run.success_requests + run.failed_requests + run.timeout_requests
    return finished / run.total_requests


def slowest(rows: Sequence[Progress], limit: int = ROWS) -> list[Progress]:
    """The runs in progress that are the least far along (ties by name)."""
    running = [r for r in rows if r.run_state == "in_progress"]
    return sorted(running, key=lambda r: (_fraction(r), r.name))[:limit]


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = width if total <= 0 and done > 0 else (done * width // total if total else 0)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def frame(rows: Sequence[Progress], width: int, redact: Callable[[str], str]) -> list[str]:
    """The display's lines: the bar, then the slowest runs; none wider than `width`."""
    t = totals(rows)
    unit_done = t.reconciled + t.runs_done + t.requests_done
    unit_all = t.collections + t.runs + t.requests
    lines = [f"{bar(unit_done, unit_all)} {t.line()}"]
    for row in slowest(rows):
        run = row.run
        counts = ""
        if run is not None:
            bad = run.failed_requests + run.timeout_requests
            counts = f"{run.success_requests + bad}/{run.total_requests} ({bad} failed)"
        lines.append(f"  {redact(row.name)[:40]:<40} {counts}")
    return [line[: max(width - 1, 10)] for line in lines]


class LiveView:
    """The terminal display. `log(text)` prints a line above it; a thread redraws it."""

    def __init__(
        self,
        stream: TextIO,
        snapshot: Snapshot,
        redact: Callable[[str], str],
        *,
        refresh: float = REFRESH_S,
    ) -> None:
        self._stream = stream
        self._snapshot = snapshot
        self._redact = redact
        self._refresh = refresh
        self._lock = threading.Lock()
        self._drawn = 0  # lines of the display now on the screen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sprunner-live", daemon=True)

    def __enter__(self) -> LiveView:
        self._draw()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._erase()
            self._flush()

    def log(self, line: str) -> None:
        """Print `line` where the display was; the next tick draws the display below it."""
        with self._lock:
            self._erase()
            self._stream.write(line + "\n")

    def _loop(self) -> None:
        while not self._stop.wait(self._refresh):
            self._draw()

    def _draw(self) -> None:
        width = shutil.get_terminal_size().columns
        lines = frame(self._snapshot(), width, self._redact)
        with self._lock:
            self._erase()
            self._stream.write("".join(line + "\n" for line in lines))
            self._drawn = len(lines)
            self._flush()

    def _erase(self) -> None:
        if self._drawn:
            self._stream.write(_ERASE.format(n=self._drawn))
            self._drawn = 0

    def _flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed terminal never stops an apply
            self._stream.flush()


class Ticker:
    """Not on a terminal: `emit(line, totals)` every `interval` seconds until stopped."""

    def __init__(
        self, snapshot: Snapshot, emit: Callable[[str, Totals], None], interval: float
    ) -> None:
        self._snapshot = snapshot
        self._emit = emit
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sprunner-ticker", daemon=True)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            now = totals(self._snapshot())
            self._emit("progress: " + now.line(), now)
