"""A state-database password never shows (issue #23 item 12): given as `?password=` in
`--state-url` or in its user-info, it is masked wherever the URL (or the password alone) is
printed: errors on stderr, JSON logs, the report, the JUnit file, `state export`, a crash
log. One function masks URLs (`redact.url_without_password`), and the password is a secret
of the command's redactor like the API key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sprunner.cli.app import cli
from sprunner.util.redact import url_passwords, url_without_password
from tests.e2e.apply_helpers import write_job

PASSWORD = "S3cret-DB-pa55"
SHORT = "pw1"  # under 8 characters: masked where it stands in a URL all the same
URLS = [
    f"postgresql://sprunner@127.0.0.1:1/state?password={PASSWORD}",
    f"postgresql://sprunner:{PASSWORD}@127.0.0.1:1/state",
    f"postgres://sprunner@127.0.0.1:1/state?sslmode=disable&password={PASSWORD}",
    f"postgresql://sprunner:{SHORT}@127.0.0.1:1/state?password={SHORT}",
]
JOB = "version: 1\ncollections:\n  - name: a\n    requests:\n      - url: https://a.example.com/\n"


@pytest.mark.parametrize("url", URLS)
def test_an_unreachable_state_database_names_its_url_without_the_password(
    tmp_path: Path, url: str
) -> None:
    job = write_job(tmp_path, JOB)
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    printed = []
    commands = [
        ["apply", str(job), "--report", str(report), "--junit", str(junit)],
        ["--log-format", "json", "plan", str(job)],
        ["state", "export"],
        ["status", str(job)],
    ]
    for command in commands:
        result = CliRunner().invoke(
            cli,
            ["--state-url", url, "--api-url", "http://127.0.0.1:9", *command],
            env={"SCRAPINGPROS_API_KEY": "k" * 20},
            catch_exceptions=False,
        )
        assert result.exit_code in (2, 3), result.output
        assert "Traceback" not in result.output
        printed += [result.stdout, result.stderr]
    assert any("cannot connect to the state database" in text for text in printed)
    assert any("127.0.0.1:1/state" in text for text in printed)  # the URL is named...
    texts = [*printed, report.read_text(), junit.read_text()]
    password = SHORT if SHORT in url else PASSWORD
    for text in texts:
        assert password not in text, text  # ... without its password
    assert json.loads(report.read_text())["ok"] is False


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?password=pw&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("postgresql://u@h/db?sslpassword=pw", "postgresql://u@h/db?sslpassword=***"),
        ("postgresql://u:@h/db", "postgresql://u:@h/db"),
        ("host=h password='p w' user=u", "host=h password=*** user=u"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("https://host:8443/p?q=1", "https://host:8443/p?q=1"),
    ],
)
def test_url_without_password(url: str, shown: str) -> None:
    assert url_without_password(url) == shown


def test_url_passwords_are_what_the_redactor_is_given() -> None:
    assert url_passwords(URLS[0]) == [PASSWORD]
    assert url_passwords(URLS[3]) == [SHORT, SHORT]
    assert url_passwords("postgresql://u@h/db") == [] and url_passwords(None) == []
