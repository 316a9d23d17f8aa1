"""The API key from a file, as Docker and Kubernetes secrets hand it over
(SCRAPINGPROS_API_KEY_FILE or --api-key-file): it works, a file open to others is warned
about, a missing, empty or unreadable one is a usage error (exit 2) before anything is sent,
and the key itself never reaches the output or the report."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sprunner.cli.app import cli
from sprunner.emulator.server import EmulatorHandle, running_emulator
from sprunner.errors import EXIT_INVALID
from tests.e2e.apply_helpers import check_report, write_job

JOB = """\
version: 1
collections:
  - name: keyed
    requests:
      - url: https://shop.example.com/a
    run:
      poll_interval: 0.2s
"""
KEY = "emulator-key-0123456789"


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(mode="simulate", run_seconds=0.2, api_key=KEY) as handle:
        yield handle


def _apply(
    emulator: EmulatorHandle, tmp_path: Path, env: dict[str, str], *options: str
) -> tuple[Result, Path]:
    job = write_job(tmp_path, JOB)
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    argv = ["--api-url", emulator.url, *options, "apply", str(job), "--report", str(report)]
    result = CliRunner(env=env).invoke(cli, argv, catch_exceptions=False)
    return result, report


def _key_file(tmp_path: Path, mode: int, text: str = KEY + "\n") -> Path:
    path = tmp_path / "secrets" / "scrapingpros-api-key"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def _never_shown(result: Result, report: Path) -> None:
    assert KEY not in result.stdout and KEY not in result.stderr
    if report.exists():
        assert KEY not in report.read_text(encoding="utf-8")


def test_the_file_variable_works_like_docker_secrets(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    path = _key_file(tmp_path, 0o600)
    result, report = _apply(emulator, tmp_path, {"SCRAPINGPROS_API_KEY_FILE": str(path)})
    assert result.exit_code == 0, result.stderr
    assert check_report(report)["ok"] is True
    assert "warning" not in result.stderr
    _never_shown(result, report)


def test_the_command_line_file_wins_over_the_key_variable(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    path = _key_file(tmp_path, 0o600)
    env = {"SCRAPINGPROS_API_KEY": "a-stale-key-of-the-shell"}
    result, report = _apply(emulator, tmp_path, env, "--api-key-file", str(path))
    assert result.exit_code == 0, result.stderr
    _never_shown(result, report)


def test_both_variables_at_once_are_refused_before_anything_is_sent(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    path = _key_file(tmp_path, 0o600)
    env = {"SCRAPINGPROS_API_KEY": KEY, "SCRAPINGPROS_API_KEY_FILE": str(path)}
    result, report = _apply(emulator, tmp_path, env)
    assert result.exit_code == EXIT_INVALID
    assert "both SCRAPINGPROS_API_KEY and SCRAPINGPROS_API_KEY_FILE are set" in result.stderr
    assert emulator.engine.collections == {}
    assert check_report(report)["exit_code"] == EXIT_INVALID
    _never_shown(result, report)


@pytest.mark.parametrize(
    ("mode", "owner", "warned"),
    [
        (0o600, None, None),
        (0o400, None, None),
        (0o644, None, "readable by every user (mode 0644; chmod o-r)"),
        (0o640, None, "open to its group or others (mode 0640; chmod 600)"),
        # A Kubernetes Secret: root's (here: another uid's), 0440 for the pod's fsGroup.
        (0o440, 4242, None),
        (0o444, 4242, "readable by every user (mode 0444; chmod o-r)"),
    ],
)
def test_a_key_file_open_to_others_is_warned_about(
    emulator: EmulatorHandle, tmp_path: Path, mode: int, owner: int | None, warned: str | None
) -> None:
    path = _key_file(tmp_path, mode)
    if owner is not None:
        if os.getuid() != 0:
            pytest.skip("only root can give the file to another uid")
        os.chown(path, owner, owner)
    result, report = _apply(emulator, tmp_path, {"SCRAPINGPROS_API_KEY_FILE": str(path)})
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    if warned is None:
        assert warnings == []
    else:
        (line,) = warnings
        assert f"the API key file {path} is {warned}" in line
    _never_shown(result, report)


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "no-such-key"


def _empty(tmp_path: Path) -> Path:
    return _key_file(tmp_path, 0o600, "  \n")


def _loop(tmp_path: Path) -> Path:
    link = tmp_path / "loop"
    link.symlink_to(link)
    return link


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "binary"
    path.write_bytes(b"\xff\xfe\x00key")
    path.chmod(0o600)
    return path


def _two_lines(tmp_path: Path) -> Path:
    return _key_file(tmp_path, 0o600, f"{KEY}\nSCRAPINGPROS_API_KEY={KEY}\n")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_missing, "does not exist"),
        (_empty, "is empty"),
        (_loop, "cannot read the API key file"),
        (_binary, "is not UTF-8 text"),
        (_two_lines, "holds more than the key"),
    ],
)
@pytest.mark.parametrize("source", ["option", "variable"])
def test_a_bad_key_file_is_a_usage_error_naming_it(
    emulator: EmulatorHandle, tmp_path: Path, make: object, says: str, source: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    if source == "option":
        result, report = _apply(emulator, tmp_path, {}, "--api-key-file", str(path))
    else:
        result, report = _apply(emulator, tmp_path, {"SCRAPINGPROS_API_KEY_FILE": str(path)})
    assert result.exit_code == EXIT_INVALID, result.stderr
    assert f"the API key file {path}" in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr
    assert emulator.engine.collections == {}  # nothing was sent
    assert check_report(report)["exit_code"] == EXIT_INVALID
    _never_shown(result, report)


def test_a_pipe_works_as_with_process_substitution(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """`--api-key-file <(pass show scrapingpros)`: a FIFO, read once, never warned about."""
    fifo = tmp_path / "key-pipe"
    os.mkfifo(fifo, 0o600)

    def feed() -> None:
        with fifo.open("w", encoding="utf-8") as pipe:
            pipe.write(KEY + "\n")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result, report = _apply(emulator, tmp_path, {}, "--api-key-file", str(fifo))
    writer.join(timeout=10)
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    _never_shown(result, report)
