"""`validate` warns when a relative `results.to` lands in a git work tree that does not
ignore it, and says which line to add (issue 25); it is silent otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sprunner.cli.app import cli

JOB = """version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/
    results: {to: results/}
"""


def validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", *args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    (root / "jobs").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "jobs" / "shop.yaml").write_text(JOB)
    return root


def test_results_inside_a_work_tree_that_does_not_ignore_them_are_warned_about(
    repo: Path,
) -> None:
    code, output = validate(str(repo / "jobs"))
    assert code == 0, output
    assert "shop.yaml:3" in output and "results.to" in output
    assert f"add the line `/jobs/results/` to {repo / '.gitignore'}" in output
    code, text = validate("--json", str(repo / "jobs"))
    [warning] = json.loads(text)["warnings"]
    assert warning["path"] == "results.to" and "/jobs/results/" in warning["message"]

    (repo / ".gitignore").write_text("/jobs/results/\n")
    code, output = validate(str(repo / "jobs"))
    assert code == 0 and "warning" not in output, output


def test_any_rule_git_reads_counts(repo: Path) -> None:
    (repo / "jobs" / ".gitignore").write_text("results/\n")  # a nested .gitignore
    code, output = validate(str(repo / "jobs"))
    assert code == 0 and "warning" not in output, output


def test_nothing_is_said_outside_a_work_tree_or_without_git(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "shop.yaml").write_text(JOB)
    code, output = validate(str(plain))
    assert code == 0 and "warning" not in output, output
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    code, output = validate(str(repo / "jobs"))
    assert code == 0 and "warning" not in output, output
