"""Output: secrets masked by substring, quiet and verbose after the command name too."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner

from sprunner.cli.app import cli
from sprunner.output.ui import HumanOutput
from sprunner.util.redact import Redactor, structured

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


class _ClosedPipe(io.StringIO):
    """A stream whose reader went away: every write raises BrokenPipeError."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stream_is_dropped_and_the_other_one_goes_on() -> None:
    closed, healthy = _ClosedPipe(), io.StringIO()
    output = HumanOutput(stdout=closed, stderr=healthy)
    output.out("first")  # raises nothing
    output.out("second")
    output.info("still logging")
    assert closed.writes == 1  # not tried again once it is known to be closed
    assert healthy.getvalue() == "still logging\n"


def test_structured_masking_happens_before_encoding() -> None:
    secret = 'tok"\\quoted-secret'
    masked = structured({"a": [secret, {"b": f"x{secret}y"}], "n": 3}, Redactor([secret]))
    assert masked == {"a": ["***", {"b": "x***y"}], "n": 3}
    assert secret not in json.dumps(masked) and "quoted-secret" not in json.dumps(masked)
