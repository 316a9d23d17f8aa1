"""Reports that never lie or go stale (issue #11, points 1-5; SPEC §3).

`--report` and `--junit` are written on every exit code but 4, and `ok` agrees with the
exit code: a monitor that reads them never takes an earlier apply's files for this one's.
A closed stdout or stderr never stops an apply.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.apply.track import CUT_SHORT
from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import Sprunner, check_report, write_job
from tests.e2e.subprocess_helpers import DEADLINE, Apply, fill_the_state_disk, wait_for

HEAD = "version: 1\ncollections:\n"
COLLECTION = """\
  - name: {name}
    requests:
      - url: https://shop.example.com/{name}/{{{{ i }}}}
        foreach: {{i: "{{{{ range(3) }}}}"}}
    run: {{poll_interval: 0.05s, timeout: 20s}}
"""
JOB = HEAD + COLLECTION


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.3) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path)


def two_jobs(directory: Path) -> Path:
    text = HEAD + COLLECTION.format(name="alpha") + COLLECTION.format(name="beta")
    return write_job(directory, text)


def stale_files(workdir: Path) -> tuple[Path, Path]:
    """A report and a JUnit file from an earlier, successful apply."""
    report, junit = workdir / "report.json", workdir / "junit.xml"
    report.write_text('{"ok": true, "stale": true}')
    junit.write_text('<testsuites tests="0" failures="0"/>')
    return report, junit


def junit_of(path: Path) -> tuple[ET.Element, dict[str, str]]:
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    props = {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}
    return suite, props


def apply_with_files(sprunner: Sprunner, job: Path, *args: str, key: str | None = None) -> Any:
    report, junit = stale_files(sprunner.workdir)
    result = sprunner(
        "apply", str(job), "--report", str(report), "--junit", str(junit), *args, key=key
    )
    return result, check_report(report), junit_of(junit)


def test_invalid_files_write_a_fresh_failed_report_and_send_nothing(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, "version: 1\ncollections:\n  - name: x\n    requestz: []\n")
    result, report, (suite, props) = apply_with_files(sprunner, job)
    assert result.exit_code == 2, result.output
    assert report["ok"] is False and report["exit_code"] == 2
    assert "requestz" in report["error"] and str(job.name) in report["error"]
    assert (props["ok"], props["exit_code"]) == ("false", "2")
    assert suite.get("errors") == "1" and suite.find("testcase/error") is not None
    assert sprunner.calls() == {}  # nothing was sent


def test_a_bad_key_writes_a_fresh_failed_report(sprunner: Sprunner, tmp_path: Path) -> None:
    result, report, (suite, props) = apply_with_files(sprunner, two_jobs(tmp_path), key="wrong")
    assert result.exit_code == 3, result.output
    assert (report["ok"], report["exit_code"]) == (False, 3)
    assert "key" in report["error"].lower()
    assert props["exit_code"] == "3" and suite.get("errors") == "1"


def test_an_unreachable_api_writes_a_fresh_failed_report(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    report, junit = stale_files(tmp_path)
    dead = sprunner.emulator.url.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens
    result = sprunner(
        "--api-url",
        dead,
        "apply",
        str(two_jobs(tmp_path)),
        "--report",
        str(report),
        "--junit",
        str(junit),
    )
    assert result.exit_code == 3, result.output
    data = check_report(report)
    assert (data["ok"], data["exit_code"], data["api_url"]) == (False, 3, dead)
    assert junit_of(junit)[1]["exit_code"] == "3"


def test_quota_spent_when_runs_start_exits_3_with_a_true_report(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    sprunner.emulator.faults.add("quota", route="run")
    result, report, (suite, props) = apply_with_files(sprunner, two_jobs(tmp_path))
    assert result.exit_code == 3, result.output
    assert (report["ok"], report["exit_code"]) == (False, 3)
    assert "quota" in report["error"]
    assert report["summary"]["runs"] == 0
    created = 0
    for collection in report["collections"]:
        assert collection["ok"] is False
        if collection["action"] == "created":
            # Created, then its run could not start: the collection carries the error.
            assert "quota" in collection["error"], collection
            created += 1
        else:
            # Under load the other's create may still be in flight when the quota ends the
            # apply: it is cut short, and says so (the next apply checks it again).
            assert (collection["action"], collection["error"]) == ("error", CUT_SHORT)
    assert created >= 1  # the one whose run start met the quota
    # API errors are <error> (SPEC §9): one per collection, and one for the apply itself.
    assert props["ok"] == "false" and int(suite.get("errors", "0")) == 3


def test_ok_agrees_with_the_exit_code(sprunner: Sprunner, tmp_path: Path) -> None:
    result, report, (_suite, props) = apply_with_files(sprunner, two_jobs(tmp_path))
    assert result.exit_code == 0, result.output
    assert (report["ok"], report["exit_code"], "error" in report) == (True, 0, False)
    assert (props["ok"], props["exit_code"]) == ("true", "0")
    failing = write_job(tmp_path, JOB.format(name="fail-me"), name="failing.yaml")
    result, report, (_suite, props) = apply_with_files(sprunner, failing)
    assert result.exit_code == 1, result.output
    assert (report["ok"], report["exit_code"]) == (False, 1)
    assert props["exit_code"] == "1"


def test_a_state_write_failure_still_writes_the_report_with_the_error(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """The state's disk fills mid-apply (its database cannot grow any more); the report is
    small enough to be written, and says what happened."""
    sprunner.emulator.engine.run_seconds = 1.0
    job = two_jobs(tmp_path)
    apply = Apply(sprunner, job, "--junit", str(sprunner.workdir / "junit.xml"))
    apply.wait_until(lambda: sprunner.calls().get("run", 0) >= 2, "both runs started")
    fill_the_state_disk(apply.process, sprunner.state_dir)
    code = apply.finish()
    assert "Traceback" not in apply.output, apply.output
    assert code == 1, apply.output
    report = check_report(apply.report)
    assert (report["ok"], report["exit_code"]) == (False, 1)
    errors = [c.get("error") or "" for c in report["collections"]]
    assert any("cannot write the state" in e for e in errors), errors
    assert junit_of(sprunner.workdir / "junit.xml")[1]["exit_code"] == "1"


def test_after_ctrl_c_a_run_in_progress_is_not_called_failed(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    sprunner.emulator.engine.run_seconds = 30.0
    apply = Apply(sprunner, two_jobs(tmp_path))
    apply.wait_until(lambda: sprunner.calls().get("get_run", 0) >= 2, "runs being polled")
    code = apply.stop(signal.SIGINT)
    assert code == 130, apply.output
    out = apply.output
    assert "FAILED alpha" not in out and "FAILED beta" not in out, out
    assert "IN PROGRESS alpha: run " in out and "the next apply adopts it" in out, out
    report = check_report(apply.report)
    assert (report["ok"], report["exit_code"], report["interrupted"]) == (False, 130, True)
    sprunner.emulator.engine.run_seconds = 0.1  # the runs end; the next apply adopts them


def test_a_closed_pipe_never_stops_an_apply(sprunner: Sprunner, tmp_path: Path) -> None:
    """`sprunner apply ... 2>&1 | true`: the reader is gone before the first line."""
    sprunner.emulator.engine.run_seconds = 0.5
    report = tmp_path / "piped-report.json"
    read, write = os.pipe()
    os.close(read)  # the reader went away: every write gets EPIPE
    command = [
        sys.executable,
        *("-m", "sprunner", "--api-url", sprunner.emulator.url, "-v"),
        *("--state-dir", str(sprunner.state_dir), "apply", str(two_jobs(tmp_path))),
        *("--report", str(report)),
    ]
    env = {**os.environ, "SCRAPINGPROS_API_KEY": sprunner.emulator.api_key}
    process = subprocess.run(
        command, stdout=write, stderr=write, env=env, timeout=DEADLINE, check=False
    )
    os.close(write)
    assert process.returncode == 0
    data = check_report(report)
    assert data["ok"] is True and data["summary"]["runs"] == 2
    assert data["summary"]["credits"] == 6  # the runs are recorded with their credits
    assert all(c["run"]["status"] == "completed" for c in data["collections"])
    wait_for(lambda: sprunner.calls().get("run", 0) == 2, "two runs")
