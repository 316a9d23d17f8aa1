"""`validate --json`: one stable document for editors and CI, valid or not."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sprunner.cli.app import cli


def invoke(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(cli, ["validate", "--json", *args], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def test_valid_files_give_counts(tmp_path: Path) -> None:
    job = tmp_path / "a.yaml"
    job.write_text(
        "version: 1\ncollections:\n  - name: a\n    requests:\n"
        "      - url: https://a.example/{{ n }}\n        foreach:\n          n: [1, 2, 2]\n"
    )
    code, document = invoke(str(job))
    assert code == 0
    assert document["ok"] is True and document["requests"] == 2
    assert document["collections"] == [{"name": "a", "file": str(job), "requests": 2}]
    (warning,) = document["warnings"]  # type: ignore[misc]
    assert "identical" in warning["message"] or "duplicate" in warning["message"]


def test_every_problem_is_listed_with_its_place(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ncollections:\n  - name: a\n    requestz: []\n")
    code, document = invoke(str(bad))
    assert code == 2
    assert document["ok"] is False
    errors = document["errors"]
    assert isinstance(errors, list) and errors
    assert {e["file"] for e in errors} == {str(bad)}
    assert all(isinstance(e["line"], int) for e in errors)
