"""Every bad job file fails `sprunner validate` with exit 2 and its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sprunner.cli.app import cli

HERE = Path(__file__).parent
EXPECTED = {
    line.split(":", 1)[0]: line
    for line in (HERE / "expected.txt").read_text("utf-8").splitlines()
    if line.strip()
}


def test_every_bad_file_has_an_expected_message() -> None:
    files = sorted(p.name for p in HERE.glob("*.yaml"))
    assert files == sorted(EXPECTED)
    assert len(files) >= 45


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    result = CliRunner().invoke(cli, ["validate", name], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first == f"error: {EXPECTED[name]}"
