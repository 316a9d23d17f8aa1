"""A bug (an unexpected exception) exits 70 with one line naming a crash log; the log holds
the traceback and no secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sprunner import state as state_package
from sprunner.cli.app import main
from sprunner.commands import plan as plan_command

KEY = "sk-live-0123456789abcdef"


def test_an_unexpected_exception_exits_70_naming_a_crash_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "jobs.yaml"
    job.write_text(
        "version: 1\ncollections:\n  - name: a\n    requests:\n      - url: https://a.example/\n"
    )

    async def broken(*args: object, **kw: object) -> None:
        raise RuntimeError(f"something is wrong with {KEY}")

    monkeypatch.setattr(plan_command, "_plan", broken)
    monkeypatch.setenv("SCRAPINGPROS_API_KEY", KEY)
    state_dir = tmp_path / "state"

    code = main(["--state-dir", str(state_dir), "plan", str(job)])

    captured = capsys.readouterr()
    assert code == 70
    (line,) = captured.err.splitlines()
    assert "Traceback" not in captured.err and KEY not in captured.err
    logs = list(state_dir.glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    log = logs[0].read_text()
    assert "Traceback" in log and "RuntimeError: something is wrong with ***" in log
    assert KEY not in log


def test_an_unusable_state_directory_puts_the_crash_log_in_a_temporary_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sprunner.commands import schema as schema_command

    def broken(**kw: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(schema_command, "run", broken)
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["--state-dir", str(blocker / "state"), "schema"])
    (line,) = capsys.readouterr().err.splitlines()
    path = Path(line.rsplit(" ", 1)[-1])
    assert code == 70 and path.exists() and "RuntimeError: boom" in path.read_text()
    os.unlink(path)


def test_main_returns_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert '"$schema"' in capsys.readouterr().out
    assert main(["no-such-command"]) == 2


def test_a_crash_log_masks_every_encoding_of_a_secret_and_database_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exceptions' texts go through the same redaction as every output (issue #23 items
    11, 12): the env() value percent-encoded or JSON-escaped, the key upper-cased, the
    state database's password in its URL or alone."""
    import json
    from urllib.parse import quote

    token = 'tok "sécret"&more'
    password = "db-Pa55word-x"
    state_url = f"postgresql://u@127.0.0.1:5432/db?password={password}"
    job = tmp_path / "jobs.yaml"
    job.write_text(
        "version: 1\ncollections:\n  - name: a\n    requests:\n"
        "      - url: \"https://a.example/?t={{ env('TOK') | urlencode }}\"\n"
    )

    def broken(**kw: object) -> None:  # the crash comes as the state is opened
        raise RuntimeError(
            f"echoed https://a.example/?t={quote(token)} in {json.dumps({'t': token})}, "
            f"key {KEY.upper()}, state {state_url.replace('password=', 'PASSWORD=')}; "
            f"and {password} alone"
        )

    monkeypatch.setattr(state_package, "opened", broken)  # as `apply.session.state_of` opens it
    monkeypatch.setenv("SCRAPINGPROS_API_KEY", KEY)
    monkeypatch.setenv("TOK", token)
    state_dir = tmp_path / "state"
    code = main(["--state-dir", str(state_dir), "--state-url", state_url, "plan", str(job)])

    assert code == 70, capsys.readouterr()
    log = next(state_dir.glob("crash-*.log")).read_text()
    assert 'RuntimeError: echoed https://a.example/?t=*** in {"t": "***"}' in log
    for shown in (quote(token), json.dumps(token)[1:-1], KEY.upper(), password):
        assert shown not in log, shown
