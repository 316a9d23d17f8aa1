"""Secrets that survive echoes (issue #23 item 11; SPEC §10 "A secret never leaves").

An API may echo a request's URL back: changed (query reordered, a fragment or a parameter
added, upper-cased, encoded otherwise) in a failed job, quoted in the job's message in any
encoding, or quoted percent-encoded in a 422 "URL blocked: ..." refusing a create. The
env() value inside it must reach none of stdout, stderr, the JSON logs, the report, the
JUnit file, the results files (their rows but the scraped bodies, their manifests) or the
state directory, in any common encoding. Rows and reports show the request the job is, as
sprunner's own masked render, never the echo.

The emulator plays the indiscreet API (`sprunner.emulator.echo`). The general case is a
Hypothesis test: random secrets of 8 characters or more (with characters that need
escaping) x random echo transformations x random quotings, each through a real apply.
`ECHO_EXAMPLES=200 pytest tests/e2e/test_secret_echoes.py` runs it longer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sprunner.cli.app import cli
from sprunner.emulator.echo import QUOTINGS, TRANSFORMS, Echo
from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, check_report
from tests.e2e.results_helpers import read_rows
from tests.e2e.secret_helpers import leaks, written

KEY = "sk-echo-KEY-0123456789"
SECRET = 'sEcr3t Tok&<"é+%/x'
JOB = """
version: 1
collections:
  - name: echoed
    requests:
      - url: "https://shop.example.com/ok?t={{{{ env('SECRET') | urlencode }}}}&k=v"
      - url: "https://shop.example.com/fail?t={{{{ env('SECRET') | urlencode }}}}&k=v"
        custom_id: "id-{{{{ env('SECRET') }}}}"
      - url: "https://shop.example.com/fail/{{{{ env('SECRET') | urlencode }}}}/x"
    results: {{to: '{to}'}}
    run: {{poll_interval: 0.05s, timeout: 20s{retry}}}
  - name: refused
    requests:
      - url: "https://shop.example.com/refuse?t={{{{ env('SECRET') | urlencode }}}}"
"""


@dataclass
class Session:
    """sprunner against one indiscreet emulator, keeping everything it printed."""

    emulator: EmulatorHandle
    workdir: Path
    secret: str
    printed: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str) -> Any:
        base = ["--api-url", self.emulator.url, "--state-dir", str(self.workdir / "state")]
        result = CliRunner().invoke(
            cli,
            [*base, "-vv", *args],
            env={"SCRAPINGPROS_API_KEY": KEY, "SECRET": self.secret},
            catch_exceptions=False,
            obj=QUICK_RETRIES,
        )
        number = len(self.printed) // 2
        self.printed[f"stdout of {args[0]} #{number}"] = result.stdout
        self.printed[f"stderr of {args[0]} #{number}"] = result.stderr
        assert "Traceback" not in result.output, result.output
        return result

    def job(self, *, retry: bool) -> Path:
        path = self.workdir / "jobs.yaml"
        extra = ", retry: {attempts: 1}" if retry else ""
        path.write_text(JOB.format(to=self.workdir / "results", retry=extra), encoding="utf-8")
        return path

    def everything(self) -> dict[str, str]:
        return {**self.printed, **written([self.workdir])}


@contextlib.contextmanager
def session(echo: Echo, secret: str, workdir: Path) -> Iterator[Session]:
    with running_emulator(mode="simulate", run_seconds=0.2, api_key=KEY, wrap=echo.wrap) as api:
        yield Session(api, workdir, secret)


@pytest.mark.parametrize(
    "transforms",
    [("reorder",), ("fragment",), ("param",), ("upper",), ("reorder", "param", "fragment")],
)
def test_echoed_urls_never_leak_and_show_the_masked_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transforms: tuple[str, ...]
) -> None:
    monkeypatch.setenv("SECRET", SECRET)  # for the report's own check below
    echo = Echo(transforms=transforms, quoting="percent")
    with session(echo, SECRET, tmp_path) as run:
        job = run.job(retry=True)
        report = tmp_path / "report.json"
        result = run("apply", str(job), "--report", str(report), "--junit", str(tmp_path / "j.xml"))
        assert result.exit_code == 1, result.output
        data = check_report(report)
        refused, echoed = sorted(data["collections"], key=lambda c: c["name"] != "refused")
        assert refused["action"] == "error" and "URL blocked: " in refused["error"]
        final = echoed["run"]["final"]["failed_jobs"]
        assert sorted((j["url"], j["custom_id"]) for j in final) == [
            ("https://shop.example.com/fail/***/x", None),
            ("https://shop.example.com/fail?t=***&k=v", "id-***"),
        ]
        assert all(j["request"] for j in [*final, *echoed["run"]["failed_jobs"]])
        rows = [read_rows(p) for p in (tmp_path / "results").rglob("*.jsonl.gz")]
        assert sorted(r["url"] for rows_ in rows for r in rows_) == [
            "https://shop.example.com/fail/***/x",
            "https://shop.example.com/fail?t=***&k=v",
            "https://shop.example.com/ok?t=***&k=v",
        ]
        # Again with JSON logs and the report on stdout, then `sprunner retry` of it.
        result = run("--log-format", "json", "apply", str(job), "--json")
        assert result.exit_code == 1, result.output
        result = run("retry", str(report), "--report", str(tmp_path / "retried.json"))
        assert result.exit_code == 1, result.output
        assert not leaks(run.everything(), [SECRET, KEY])


secrets = st.text(
    alphabet=st.sampled_from(list("aZq9X0") + list(" &<>\"'%+#?=/\\é€Ж中😀")),
    min_size=8,
    max_size=20,
).filter(lambda s: len(set(s)) >= 4 and sum(c.isascii() and c.isalnum() for c in s) >= 2)
echoes = st.builds(
    Echo,
    transforms=st.lists(st.sampled_from(TRANSFORMS), max_size=3, unique=True).map(tuple),
    quoting=st.sampled_from(QUOTINGS),
)


@settings(
    max_examples=int(os.environ.get("ECHO_EXAMPLES", "12")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(secret=secrets, echo=echoes)
def test_no_secret_survives_any_echo(secret: str, echo: Echo) -> None:
    with tempfile.TemporaryDirectory() as folder, session(echo, secret, Path(folder)) as run:
        job = run.job(retry=False)
        report = Path(folder) / "report.json"
        junit = Path(folder) / "junit.xml"
        result = run("apply", str(job), "--report", str(report), "--junit", str(junit))
        assert result.exit_code == 1, result.output
        result = run("--log-format", "json", "apply", str(job), "--json")
        assert result.exit_code == 1, result.output
        found = leaks(run.everything(), [secret, KEY])
        assert not found, found
