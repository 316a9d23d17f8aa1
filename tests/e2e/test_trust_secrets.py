"""Secrets through any filter, the output side (issue #12, points 1-2).

env() values that went through `urlencode`, `trim`, `upper`, `replace`, concatenation, or
that hold `"` and `\\` (JSON-escaped forms), and secrets of 1 to 5 characters: their jobs
fail in the emulator, which echoes each URL back in `failed_jobs`. Neither the raw secret
nor any encoded form of it may appear in stdout, stderr, the report, the JUnit file,
`apply --json` or the state directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner

from sprunner.cli.app import cli
from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, check_report

# Characters that appear nowhere else in sprunner's output, so that even a one-character
# secret can be searched for.
SECRETS = {
    "S1": "Ж",
    "S2": "жЯ",
    "S3": "яжю",
    "S4": 'Ю"\\Ж',
    "S5": 'ѢЖ"Ю\\',
    "LONG": 'zq"Ѣ\\-a-long-token-Ѣ',
}
JOBS = """
version: 1
collections:
  - name: filtered
    requests:
      - url: "https://shop.example.com/fail/a?t={{ env('S1') | urlencode }}"
      - url: "https://shop.example.com/fail/b?t={{ ('  ' ~ env('S2') ~ ' ') | trim | urlencode }}"
      - url: "https://shop.example.com/fail/c/{{ env('S3') | upper }}"
      - url: "https://shop.example.com/fail/d?t={{ env('S4') | replace('Ю', 'x') | urlencode }}"
      - url: "https://shop.example.com/fail/e/pre-{{ env('S5') }}-post"
      - url: "https://shop.example.com/fail/f?t={{ env('LONG') | urlencode }}&u=1"
      - url: "https://shop.example.com/fail/g?t={{ env('S3') }}{{ env('S1') }}"
      - url: "https://shop.example.com/fail/h?k={{ env('S2') | lower }}&more=1"
    run: {poll_interval: 0.05s, timeout: 10s}
"""


def forms(secret: str) -> set[str]:
    """Every way the secret (or a filtered form of it) may be written out."""
    variants = {secret, secret.upper(), secret.lower(), secret.replace("Ю", "x")}
    out: set[str] = set()
    for value in variants:
        out |= {
            value,
            quote(value, safe=""),
            quote(value, safe="").lower(),
            quote_plus(value),
            json.dumps(value)[1:-1],  # JSON-escaped, as inside a JSON string
            json.dumps(value, ensure_ascii=True)[1:-1],  # \\uXXXX escapes
        }
    return {f for f in out if f}


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(mode="simulate", run_seconds=0.2) as handle:
        yield handle


def test_secrets_through_filters_are_masked_everywhere(
    emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    job = tmp_path / "jobs.yaml"
    job.write_text(JOBS, encoding="utf-8")
    state, report, junit = tmp_path / "state", tmp_path / "report.json", tmp_path / "junit.xml"
    printed: dict[str, str] = {}
    for number, extra in enumerate(([], ["--json"])):
        result = CliRunner().invoke(
            cli,
            [
                *("--api-url", emulator.url, "--state-dir", str(state), "-vv", "apply"),
                *(str(job), "--report", str(report), "--junit", str(junit), *extra),
            ],
            env={"SCRAPINGPROS_API_KEY": emulator.api_key},
            catch_exceptions=False,
            obj=QUICK_RETRIES,
        )
        assert result.exit_code == 1, result.output  # every job failed: over max_failed
        printed[f"stdout {number}"] = result.stdout
        printed[f"stderr {number}"] = result.stderr
        printed[f"report {number}"] = report.read_text(encoding="utf-8")
        printed[f"junit {number}"] = junit.read_text(encoding="utf-8")
        job.write_text(JOBS.replace("/fail/a", "/fail/a2"), encoding="utf-8")  # run again

    # The failed jobs are there, shown masked (not dropped).
    data = check_report(report)
    (collection,) = data["collections"]
    urls = [j["url"] for j in collection["run"]["failed_jobs"]]
    assert len(urls) == 8 and all("***" in url for url in urls), urls
    assert "***" in printed["stdout 0"] and "FAILED filtered" in printed["stdout 0"]
    assert json.loads(printed["stdout 1"])["collections"][0]["run"]["failed_jobs"]

    for path in state.rglob("*"):
        if path.is_file():
            printed[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    for where, text in printed.items():
        for name, secret in SECRETS.items():
            leaked = sorted(f for f in forms(secret) if f in text)
            assert not leaked, f"{where} holds {leaked} of {name}"
