"""The files sprunner writes (`--report`, `--junit`, `--metrics`) are regular files: a FIFO
(or a device, a directory) given as one is refused up front with exit 2. On a FIFO the
apply used to hang while it held the lock (issue 23). So is one in a folder that cannot be
written: the apply used to run everything, then exit 1. Real processes, with a deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import Sprunner, write_job

JOB = """
version: 1
collections:
  - name: shop
    requests: [{url: "https://shop.example.com/"}]
    run: {poll_interval: 0.1s}
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path)


def _run(sprunner: Sprunner, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        *("-m", "sprunner", "--api-url", sprunner.emulator.url),
        *("--state-dir", str(sprunner.state_dir), *args),
    ]
    env = {**os.environ, "SCRAPINGPROS_API_KEY": sprunner.emulator.api_key}
    # A hang is the failure this guards against: the deadline turns it into one.
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.mark.parametrize("option", ["--metrics", "--report", "--junit"])
def test_a_fifo_target_is_refused_up_front(sprunner: Sprunner, tmp_path: Path, option: str) -> None:
    fifo = tmp_path / "target.fifo"
    os.mkfifo(fifo)
    job = write_job(tmp_path, JOB)
    done = _run(sprunner, "apply", str(job), option, str(fifo))
    assert done.returncode == 2, done.stderr
    assert f"{fifo} is not a regular file" in done.stderr
    assert sprunner.calls() == {}  # nothing sent
    assert fifo.is_fifo()  # and left as it was

    # In the log format asked for, like any usage error.
    done = _run(sprunner, "--log-format", "json", "apply", str(job), option, str(fifo))
    assert done.returncode == 2
    [record] = [json.loads(line) for line in done.stderr.splitlines()]
    assert (record["event"], record["level"]) == ("usage_error", "error")
    assert "is not a regular file" in record["message"]


def test_a_device_or_a_directory_is_refused_and_a_regular_file_is_fine(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, JOB)
    for bad in ("/dev/null", str(tmp_path)):
        done = _run(sprunner, "retry", str(job), "--metrics", bad)
        assert done.returncode == 2, done.stderr
    metrics = tmp_path / "sprunner.prom"
    metrics.write_text("")
    done = _run(sprunner, "apply", str(job), "--metrics", str(metrics))
    assert done.returncode == 0, done.stderr
    assert "sprunner_collection_ok" in metrics.read_text()


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write: a read-only tmpfs for root (whom no mode bits
    stop), a folder of mode 0555 for anyone else."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("option", ["--report", "--junit", "--metrics"])
def test_a_file_in_a_folder_that_cannot_be_written_is_exit_2_before_anything_is_sent(
    sprunner: Sprunner, read_only: Path, option: str
) -> None:
    """It used to start every run, then fail to write the report and exit 1 ("a collection
    is not healthy"), or, for --metrics, only warn at the end."""
    job = write_job(sprunner.workdir, JOB)
    target = read_only / "sub" / "out"
    done = _run(sprunner, "apply", str(job), option, str(target))
    assert done.returncode == 2, done.stderr
    assert f"cannot write {target}: {read_only} is on a read-only file system" in done.stderr or (
        f"cannot write {target}: {read_only}: Permission denied" in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert sum(sprunner.calls().values()) == 0  # nothing was sent
    assert not sprunner.state_dir.exists()  # nothing was written either
