"""Driving `python -m sprunner apply` as a real subprocess, to stop it with a signal.

The emulator runs in the test process, so what it has seen (`engine.calls`, a fault's
`fired`) and what the state directory holds are the points a test waits for: polls with a
deadline, never fixed sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sprunner.state import Entry, State
from tests.e2e.apply_helpers import Sprunner

DEADLINE = 20.0  # seconds: generous for a loaded CI machine; the polls end far sooner


class Apply:
    """One `sprunner apply` (or, with `command`, another command on a path: `retry
    REPORT.json`) in a subprocess."""

    def __init__(self, sprunner: Sprunner, job: Path, *args: str, command: str = "apply") -> None:
        self.report = sprunner.workdir / "partial-report.json"
        self.report.unlink(missing_ok=True)
        command_line = [
            sys.executable,
            *("-m", "sprunner", "--api-url", sprunner.emulator.url),
            *("--state-dir", str(sprunner.state_dir), command, str(job)),
            *("--report", str(self.report), *args),
        ]
        env = {**os.environ, "SCRAPINGPROS_API_KEY": sprunner.emulator.api_key}
        self.process = subprocess.Popen(
            command_line,
            cwd=sprunner.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.output = ""

    def wait_until(self, predicate: Callable[[], bool], what: str) -> None:
        """Poll `predicate` until it holds; fail if the apply ends first or time runs out."""
        deadline = time.monotonic() + DEADLINE
        while not predicate():
            if self.process.poll() is not None:
                self.finish()
                raise AssertionError(f"apply ended before {what}:\n{self.output}")
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise AssertionError(f"timed out waiting for {what}:\n{self.output}")
            time.sleep(0.005)

    def stop(self, signum: signal.Signals) -> int:
        self.process.send_signal(signum)
        return self.finish()

    def finish(self) -> int:
        """Wait for the end (again, if need be) and keep what it printed."""
        if self.process.returncode is None or not self.process.stdout.closed:
            out, err = self.process.communicate(timeout=DEADLINE)
            self.output = out + err
        return self.process.returncode


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def recorded(sprunner: Sprunner) -> dict[str, Entry]:
    """The collections whose id the state holds now (snapshot + journal), as the next apply
    would read them; creates sent but not yet answered (no id yet) are left out."""
    entries = State(sprunner.state_dir, sprunner.emulator.url, persist=False).entries()
    return {name: entry for name, entry in entries.items() if entry.id}


def wait_quiet(sprunner: Sprunner, seconds: float = 0.1) -> None:
    """Wait until the emulator has seen no new call for `seconds` (with a deadline).

    For the one thing a test cannot see from outside: that an apply has handled the
    answers to the calls it made (before a signal), or that a killed apply's last calls
    have been served (before the next apply).
    """
    engine = sprunner.emulator.engine
    deadline = time.monotonic() + DEADLINE
    calls = sum(engine.calls.values())
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < seconds:
        assert time.monotonic() < deadline, "the emulator never went quiet"
        time.sleep(0.01)
        now = sum(engine.calls.values())
        if now != calls:
            calls, quiet_since = now, time.monotonic()
