"""Driving `sprunner` end to end against an emulator on loopback."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from sprunner.cli.app import cli
from sprunner.emulator.server import EmulatorHandle
from sprunner.util.backoff import API_BACKOFF, WRITE_BACKOFF, Retries

# The same retries and look-ups as in production, with a tenth of the waiting.
QUICK_RETRIES = Retries(
    api=dataclasses.replace(API_BACKOFF, base=API_BACKOFF.base / 10),
    write=dataclasses.replace(WRITE_BACKOFF, base=WRITE_BACKOFF.base / 10),
)

REPORT_SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "report.schema.json").read_text()
)


def write_job(directory: Path, text: str, name: str = "jobs.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def check_report(path: Path) -> dict[str, Any]:
    """Load a report and validate it against its schema: every report the tests make."""
    import jsonschema

    report: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft7Validator(REPORT_SCHEMA).validate(report)
    return report


@dataclass
class Sprunner:
    """`sprunner` pointed at one emulator and one state directory."""

    emulator: EmulatorHandle
    state_dir: Path
    workdir: Path
    retries: Retries | None = None  # None: production's backoffs

    def __call__(self, *args: str, key: str | None = None) -> Result:
        runner = CliRunner()
        env = {"SCRAPINGPROS_API_KEY": key if key is not None else self.emulator.api_key}
        return runner.invoke(
            cli,
            ["--api-url", self.emulator.url, "--state-dir", str(self.state_dir), *args],
            env=env,
            catch_exceptions=False,
            obj=self.retries,
        )

    def apply(self, path: Path, *args: str) -> tuple[Result, dict[str, Any]]:
        report = self.workdir / "report.json"
        report.unlink(missing_ok=True)
        result = self("apply", str(path), "--report", str(report), *args)
        return result, check_report(report)

    def remote(self) -> dict[str, list[dict[str, Any]]]:
        """The emulator's collections by name (a list: duplicates must show)."""
        by_name: dict[str, list[dict[str, Any]]] = {}
        for stored in list(self.emulator.engine.collections.values()):
            by_name.setdefault(stored.name, []).append(stored.requests)
        return by_name

    def calls(self) -> dict[str, int]:
        return dict(self.emulator.engine.calls)

    def reset_calls(self) -> None:
        self.emulator.engine.calls.clear()
