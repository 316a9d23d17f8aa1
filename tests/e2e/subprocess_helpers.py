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


def fill_the_state_disk(process: subprocess.Popen[str], state_dir: Path) -> None:
    """What a full disk does to the state of a running apply: its database files cannot
    grow any more (the process's file size limit set to their size now; Python ignores
    SIGXFSZ, so the write fails with EFBIG, which SQLite takes as a full disk). Smaller
    files (a report) can still be written."""
    import resource

    sizes = [p.stat().st_size for p in state_dir.glob("state.db*") if p.is_file()]
    limit = max([*sizes, 16 * 1024])
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit, limit))


def recorded(sprunner: Sprunner) -> dict[str, Entry]:
    """The collections whose id the state holds now (committed), as the next apply would
    read them; creates sent but not yet answered (no id yet) are left out."""
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


def server_connections(port: int) -> int:
    """How many connections the emulator on `port` still holds open (ESTABLISHED, or
    CLOSE_WAIT: the client is gone, what it sent is not read yet), from the kernel's tables.
    0 where there are no /proc tables (the caller's quiet period is then all there is)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, status = fields[1], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and status in ("01", "08"):
                count += 1
    return count


def wait_served(sprunner: Sprunner, seconds: float = 0.2) -> None:
    """After a killed apply: wait until the emulator has read everything it sent (its
    connections closed), then for a quiet period while the last requests are answered.

    A quiet period alone is a guess on a loaded machine: a request sent just before the
    kill may wait unread longer than it, and then create a collection behind the next
    apply's back (a duplicate when the Idempotency-Key is ignored)."""
    port = sprunner.emulator.port
    wait_for(lambda: server_connections(port) == 0, "the emulator to close the connections")
    wait_quiet(sprunner, seconds)
