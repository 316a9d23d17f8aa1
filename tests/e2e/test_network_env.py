"""The environment of the HTTP client, end to end: what cannot work is exit 2, never 70."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job

JOBS = """
version: 1
collections:
  - name: one
    requests: [{url: "https://shop.example.com/a"}]
"""


def test_a_missing_ssl_cert_file_is_exit_2_with_a_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with running_emulator() as emulator:
        https = dataclasses.replace(emulator, url="https://127.0.0.1:9")  # never reached
        sprunner = Sprunner(https, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(tmp_path, JOBS)
        result = sprunner("apply", str(job), "--report", str(tmp_path / "report.json"))
        assert result.exit_code == 2, result.output
        assert "SSL_CERT_FILE" in result.output and "Traceback" not in result.output
        assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 2
        assert sprunner.calls() == {}


def test_a_key_with_a_line_break_is_exit_2_and_nothing_is_sent(tmp_path: Path) -> None:
    with running_emulator() as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(tmp_path, JOBS)
        key = emulator.api_key + "\r\nX-Injected: 1"
        result = sprunner("apply", str(job), key=key)
        assert result.exit_code == 2, result.output
        # Refused where the key is read (session.py) or, failing that, by the client.
        assert "API_KEY" in result.output or "API key" in result.output, result.output
        assert "X-Injected" not in result.output
        assert sprunner.calls() == {}
