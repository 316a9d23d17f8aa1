"""Exit paths of the table in SPEC §3 that no other test reaches, through `python -m
sprunner` against the emulator on loopback: a report that cannot be written at the end (the
state keeps the runs; exit 1, or the apply's own code when it failed already)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.app import PREFIX
from sprunner.emulator.server import running_emulator
from sprunner.errors import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM
from sprunner.runs.verdict import read
from sprunner.state import State
from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.subprocess_helpers import Apply, wait_for

JOB = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/a
      - url: https://shop.example.com/b
    run: {poll_interval: 0.1s}
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=1.0) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path)


def test_a_report_that_cannot_be_written_at_the_end_loses_no_run(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """The report's folder is replaced by a file while the run goes on: the apply says so
    (the file named, no traceback) and exits 1, the JUnit report is still written, and the
    state has the run and its verdict, so that the next apply and `status` know it. Before,
    the JUnit report was not written, and the message named a temporary file."""
    job = write_job(tmp_path, JOB)
    folder, junit = tmp_path / "reports", tmp_path / "junit.xml"
    folder.mkdir()
    report = folder / "report.json"
    apply = Apply(sprunner, job, "--report", str(report), "--junit", str(junit))
    engine = sprunner.emulator.engine
    apply.wait_until(lambda: engine.calls["run"] == 1, "the run to start")
    shutil.rmtree(folder)
    folder.write_text("in the way\n", encoding="utf-8")
    assert apply.finish() == EXIT_FAILED, apply.output
    assert f"cannot write the report {report}: File exists ({folder})" in apply.output
    assert "Traceback" not in apply.output and ".tmp" not in apply.output
    run_id = next(iter(engine.runs))
    assert 'name="shop"' in junit.read_text(encoding="utf-8")
    state = State(sprunner.state_dir, sprunner.emulator.url, persist=False)
    entry = state.entries()["shop"]
    assert entry.last_run is not None and entry.last_run.run_id == run_id
    assert entry.inflight is None  # seen to its end, not adopted again
    verdict = read(state, "shop")
    assert verdict is not None and (verdict.run_id, verdict.ok) == (run_id, True)


def test_ctrl_c_keeps_exit_130_when_the_report_cannot_be_written(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """The report's failure is said, and the exit code stays the interruption's (it was 1,
    "a collection is not healthy", which hid the Ctrl-C from the caller)."""
    job = write_job(tmp_path, JOB)
    folder = tmp_path / "reports"
    folder.mkdir()
    apply = Apply(sprunner, job, "--report", str(folder / "report.json"))
    engine = sprunner.emulator.engine
    apply.wait_until(lambda: engine.calls["run"] == 1, "the run to start")
    shutil.rmtree(folder)
    folder.write_text("in the way\n", encoding="utf-8")
    assert apply.stop(signal.SIGINT) == EXIT_SIGINT, apply.output
    assert f"cannot write the report {folder / 'report.json'}" in apply.output
    assert "Traceback" not in apply.output


def _into_a_closed_pipe(stream: str, *args: str) -> tuple[int, str]:
    """`python -m sprunner ARGS` with stdout (or stderr) a pipe whose reader has gone, as
    `sprunner --help | head -1` leaves it; the exit code and what the other stream got."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        closed = {stream: write_end}
        other = "stderr" if stream == "stdout" else "stdout"
        done = subprocess.run(
            [sys.executable, "-m", "sprunner", *args],
            **closed,  # type: ignore[call-overload]
            **{other: subprocess.PIPE},
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stdout if stream == "stderr" else done.stderr


@pytest.mark.parametrize(
    ("stream", "args", "code"),
    [
        ("stdout", ("--help",), EXIT_OK),  # was 1: "a collection is not healthy"
        ("stdout", ("--version",), EXIT_OK),  # was 1
        ("stdout", ("apply", "--help"), EXIT_OK),  # was 1
        ("stderr", ("apply", "--no-such-option"), EXIT_INVALID),  # was 70: a "crash"
        ("stderr", ("--log-format", "json", "plan", "--bogus"), EXIT_INVALID),  # was 70
        ("stdout", ("schema",), EXIT_OK),
    ],
)
def test_a_closed_pipe_ends_quietly_with_the_commands_own_code(
    tmp_path: Path, stream: str, args: tuple[str, ...], code: int
) -> None:
    returncode, other = _into_a_closed_pipe(stream, "--state-dir", str(tmp_path / "s"), *args)
    assert returncode == code, other
    assert other == ""  # no "Exception ignored ... BrokenPipeError", no traceback
    assert not (tmp_path / "s").exists()  # no crash log either


def _answers(request: urllib.request.Request) -> bool:
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.mark.parametrize(
    ("signum", "ignored", "code"),
    [
        (signal.SIGINT, False, EXIT_SIGINT),
        (signal.SIGINT, True, EXIT_SIGINT),  # was 0: started with SIGINT ignored (`cmd &`)
        (signal.SIGTERM, False, EXIT_SIGTERM),  # was -15: killed by it, not an exit code
    ],
)
def test_the_emulator_stopped_by_a_signal_exits_130_or_143(
    signum: signal.Signals, ignored: bool, code: int
) -> None:
    def ignore_sigint() -> None:  # what a shell does to a background job's SIGINT
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    command = [sys.executable, "-m", "sprunner", "emulator", "--port", "0", "--mode", "simulate"]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint if ignored else None,
    )
    assert process.stderr is not None
    banner = process.stderr.readline()  # said once it listens
    assert "listening on http://127.0.0.1:" in banner
    url = banner.rsplit(" ", 1)[1].strip()
    asked = urllib.request.Request(url + PREFIX, headers={"Authorization": "Bearer emulator-key"})
    wait_for(lambda: _answers(asked), "the emulator to serve")  # it listens after the banner
    process.send_signal(signum)
    rest = process.communicate(timeout=30)[1]
    assert process.returncode == code, rest
    assert "Traceback" not in rest
