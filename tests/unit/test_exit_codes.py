"""Every exit path ends with a code of the table in SPEC §3 (and `plan --detailed-exitcode`'s
10), and the table is the same in errors.py, `sprunner --help` and the README."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import sprunner
from sprunner import errors
from sprunner.cli.app import cli
from sprunner.cli.options import EXIT_CODES
from sprunner.errors import (
    EXIT_CHANGES_PENDING,
    EXIT_INVALID,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    Interrupted,
    SprunnerError,
    StateDirectoryError,
    StateError,
    exit_code_for,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC_TABLE = {0, 1, 2, 3, 4, 70, 130, 143}


def _all_error_classes() -> set[type[SprunnerError]]:
    for module in pkgutil.walk_packages(sprunner.__path__, "sprunner."):
        if module.name.endswith("__main__"):  # importing it runs the program
            continue
        try:
            importlib.import_module(module.name)
        except ImportError as error:  # an extra that is not installed
            pytest.skip(f"cannot import {module.name}: {error}")
    found: set[type[SprunnerError]] = set()
    todo: list[type[SprunnerError]] = [SprunnerError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_exits_with_a_code_of_the_table() -> None:
    classes = _all_error_classes()
    assert len(classes) > 20  # the whole tree was found, the API errors included
    codes = {cls.__qualname__: cls.exit_code for cls in classes}
    outside = {name: code for name, code in codes.items() if code not in SPEC_TABLE}
    assert outside == {}


def test_the_constants_the_help_and_the_readme_give_the_same_codes() -> None:
    constants = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert constants == SPEC_TABLE | {EXIT_CHANGES_PENDING}
    # One code a line, but "130 ..., 143 ..." share one.
    helped = {int(c) for c in re.findall(r"^\s+(\d+)\s", EXIT_CODES, re.MULTILINE)}
    helped |= {EXIT_SIGTERM} if re.search(r"\b143 terminated\b", EXIT_CODES) else set()
    assert helped == constants
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Commands and exit codes") :]
    section = section[: section.index("\n## ", 3)]
    rows = re.findall(r"^\| (\d+(?: / \d+)?) \|", section, re.MULTILINE)
    documented = {int(code) for row in rows for code in row.split(" / ")}
    assert documented == constants


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (KeyboardInterrupt(), EXIT_SIGINT),
        (Interrupted(signal.SIGINT), EXIT_SIGINT),
        (Interrupted(signal.SIGTERM), EXIT_SIGTERM),
        (StateDirectoryError("cannot create the state directory x"), EXIT_INVALID),
        (StateError("cannot write the state in x"), 1),
        (RuntimeError("a bug"), 70),
    ],
)
def test_exit_code_for(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_a_state_directory_error_names_the_uid_and_the_docker_fix() -> None:
    error = StateDirectoryError.cannot(
        "create", ".sprunner", PermissionError(13, "Permission denied", ".sprunner")
    )
    assert str(error).startswith("cannot create the state directory .sprunner: Permission denied")
    assert "uid " in str(error) and '--user "$(id -u):$(id -g)"' in str(error)
    lock = StateDirectoryError.cannot(
        "lock", "s", IsADirectoryError(21, "Is a directory", "s/lock")
    )
    assert str(lock) == "cannot lock the state directory s: Is a directory (s/lock)"


def test_usage_errors_exit_2() -> None:
    result = CliRunner().invoke(cli, ["apply", "--no-such-option"], catch_exceptions=False)
    assert result.exit_code == EXIT_INVALID


def test_ctrl_c_before_a_command_handler_exits_130_not_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Click would say "Aborted!" and exit 1, which means "a collection failed"."""
    import sprunner.cli.app as cli_module

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "output_for", interrupted)
    result = CliRunner().invoke(cli, ["validate", "."], catch_exceptions=False)
    assert result.exit_code == EXIT_SIGINT
    assert "Aborted" not in result.output


def test_an_uncreatable_state_directory_exits_2_with_a_report(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(
        "version: 1\ncollections:\n  - name: a\n    requests:\n      - url: https://a.example/\n",
        encoding="utf-8",
    )
    (tmp_path / "file").write_text("not a folder\n", encoding="utf-8")
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    argv = ["--api-url", "http://127.0.0.1:9", "--state-dir", str(tmp_path / "file" / "state")]
    argv += ["apply", str(tmp_path / "jobs.yaml"), "--report", str(report), "--junit", str(junit)]
    result = CliRunner(env={"SCRAPINGPROS_API_KEY": "k" * 16}).invoke(
        cli, argv, catch_exceptions=False
    )
    assert result.exit_code == EXIT_INVALID, result.stderr
    assert "cannot create the state directory" in result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert (data["ok"], data["exit_code"]) == (False, EXIT_INVALID)
    assert 'name="exit_code" value="2"' in junit.read_text(encoding="utf-8")
