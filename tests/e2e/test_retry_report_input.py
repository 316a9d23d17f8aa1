"""`sprunner retry REPORT` trusts no input (issue #23 item 6): the report is read like a job
file (`sprunner.reportfile`): a regular file only, a size cap, a depth cap, the report
schema, and its `file` names only job files, never a folder to walk. Each case is exit 2
with a clear message, at once, with nothing sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sprunner.report import readback as reportfile
from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.retry_helpers import NO_RETRY, sprunner

__all__ = ["sprunner"]  # the fixture the tests take


def _refused(sprunner: Sprunner, report: Path | str, said: str) -> None:
    sprunner.reset_calls()
    result = sprunner("retry", str(report))
    assert result.exit_code == 2, result.output
    assert said in result.output, result.output
    assert "Traceback" not in result.output
    assert sprunner.calls() == {}


def _a_report(sprunner: Sprunner, tmp_path: Path) -> dict[str, object]:
    _, report = sprunner.apply(write_job(tmp_path, NO_RETRY))
    return report


def test_a_fifo_is_refused_without_waiting_for_a_writer(sprunner: Sprunner, tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    finished = threading.Event()

    def call() -> None:
        _refused(sprunner, fifo, "not a regular file: it is a FIFO")
        finished.set()

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if not finished.is_set():  # it hangs: open the FIFO's other end so the test can end
        with open(fifo, "w"):
            pass
        pytest.fail("sprunner retry waited on a FIFO")


def test_dev_zero_is_refused(sprunner: Sprunner) -> None:
    _refused(sprunner, "/dev/zero", "not a regular file: it is a character device")


def test_a_directory_is_refused(sprunner: Sprunner, tmp_path: Path) -> None:
    _refused(sprunner, tmp_path, "is a directory")


def test_a_report_over_the_cap_is_refused(sprunner: Sprunner, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as out:  # sparse: no disk is spent on it
        out.truncate(reportfile.MAX_REPORT_BYTES + 1)
    _refused(sprunner, big, "the file is too large")


def test_a_deeply_nested_report_is_refused(sprunner: Sprunner, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    _refused(sprunner, deep, "not a JSON report")
    shallow_enough = tmp_path / "deep2.json"  # under the parser's limit, over ours
    shallow_enough.write_text('{"collections": ' + "[" * 500 + "]" * 500 + "}")
    _refused(sprunner, shallow_enough, f"nested deeper than {reportfile.MAX_DEPTH} levels")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (b"\xff\xfe not text", "not a JSON report"),
        (b"{", "not a JSON report"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"collections": "x"}', "not a sprunner report this version can read"),
        (b'{"ok": true, "stale": true}', "not a sprunner report this version can read"),
    ],
    ids=["not-utf8", "truncated", "a-list", "collections-not-a-list", "not-a-report"],
)
def test_what_is_not_a_report_is_refused(
    sprunner: Sprunner, tmp_path: Path, text: bytes, said: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(text)
    _refused(sprunner, path, said)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("/usr", "a job file's name ends in .yaml or .yml"),
        ("/", "a job file's name ends in .yaml or .yml"),
        ("dir.yaml", "a directory (a report names files, never folders to search)"),
        ("fifo.yaml", "not a regular file"),
        ("/dev/null", "a job file's name ends in .yaml or .yml"),
    ],
)
def test_a_report_names_only_job_files(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, said: str
) -> None:
    report = _a_report(sprunner, tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir.yaml").mkdir()
    os.mkfifo(tmp_path / "fifo.yaml")
    report["collections"][0]["file"] = name  # type: ignore[index]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(report))
    _refused(sprunner, path, said)


def test_usr_is_never_walked(tmp_path: Path) -> None:
    """As a user runs it, with a real process: refused at once (it walked /usr before)."""
    report = {
        "version": 1,
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:00Z",
        "api_url": "http://127.0.0.1:9",
        "ok": False,
        "summary": {
            k: 0
            for k in [
                "collections",
                "created",
                "updated",
                "unchanged",
                "runs",
                "total_requests",
                "success_requests",
                "failed_requests",
                "timeout_requests",
            ]
        },
        "collections": [
            {"name": "x", "file": "/usr", "collection_id": None, "action": "error", "ok": False}
            | {"run": None}
        ],
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    done = subprocess.run(
        [sys.executable, "-m", "sprunner", "--state-dir", str(tmp_path / "s"), "retry", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SCRAPINGPROS_API_KEY": "k"},
    )
    assert done.returncode == 2, done.stderr
    assert "/usr: a job file's name ends in .yaml or .yml" in done.stderr
