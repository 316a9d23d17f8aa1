"""Output: secrets masked by substring, quiet and verbose after the command name too."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sprunner.cli import cli
from sprunner.redact import Redactor

EXAMPLES = Path(__file__).parents[2] / "examples" / "jobs"


def test_secrets_are_masked_longest_first() -> None:
    redactor = Redactor(["tok-123456", "tok-123456-extended"])
    assert redactor.redact("a tok-123456-extended b tok-123456") == "a *** b ***"


def test_values_too_short_to_be_credentials_do_not_garble_output() -> None:
    redactor = Redactor(["ok", "prod"])
    assert redactor.redact("ok: production") == "ok: production"


def test_quiet_and_verbose_work_after_the_command_name() -> None:
    runner = CliRunner()
    quiet = runner.invoke(cli, ["validate", str(EXAMPLES), "-q"], catch_exceptions=False)
    assert quiet.exit_code == 0 and quiet.stdout == ""
    before = runner.invoke(cli, ["-q", "validate", str(EXAMPLES)], catch_exceptions=False)
    assert before.exit_code == 0 and before.stdout == ""
    loud = runner.invoke(cli, ["validate", str(EXAMPLES)], catch_exceptions=False)
    assert loud.stdout.startswith("ok: 2 files, 4 collections")
