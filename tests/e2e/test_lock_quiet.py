"""Exit 4 is quiet (SPEC §3, §9): an apply or a retry stopped at the lock changes nothing
another apply owns. The lock is checked first, before the job files are read: no ping
(not even /start), no metrics file, no report, no JUnit, no API call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.server import running_emulator
from sprunner.state import locked
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.monitor import Monitor

OWNED = "written by the apply that holds the lock\n"


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def _owned_files(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / f"owned.{name}" for name in ("report", "junit", "metrics")}
    for path in files.values():
        path.write_text(OWNED)
    return files


@pytest.mark.parametrize("command", ["apply", "retry"])
def test_a_command_stopped_at_the_lock_pings_writes_and_sends_nothing(
    sprunner: Sprunner, tmp_path: Path, command: str
) -> None:
    # Invalid job files (and a report that is no report): had they been read, exit 2.
    target = write_job(tmp_path, "name: not a job file\n")
    if command == "retry":
        target = tmp_path / "not-a-report.json"
        target.write_text("[]")
    files = _owned_files(tmp_path)
    with Monitor() as monitor, locked(sprunner.state_dir):
        result = sprunner(
            "--log-format",
            "json",
            command,
            str(target),
            *("--report", str(files["report"]), "--junit", str(files["junit"])),
            *("--metrics", str(files["metrics"]), "--ping", monitor.url("check")),
        )
    assert result.exit_code == 4, result.output
    assert monitor.pings == []
    assert {name: path.read_text() for name, path in files.items()} == dict.fromkeys(files, OWNED)
    assert sprunner.calls() == {}
    # One line, and it says why (with the id a log shipper groups by).
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert (
        record["level"] == "error"
        and "another sprunner apply holds the lock" in (record["message"])
    )
    assert isinstance(record["apply_id"], str)
    assert result.stdout == ""


def test_local_applies_take_the_lock_of_their_own_state(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sprunner.cli.app import cli

    state = tmp_path / "state"
    job = write_job(
        tmp_path,
        "version: 1\ncollections:\n  - name: a\n    requests: [{url: https://a.example/}]\n",
    )
    with locked(state / "local"):
        result = CliRunner().invoke(
            cli, ["--state-dir", str(state), "apply", str(job), "--local"], catch_exceptions=False
        )
    assert result.exit_code == 4, result.output
    assert not (state / "local" / "emulator.json").exists()
