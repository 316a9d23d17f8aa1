"""Operating an apply unattended (SPEC §9): log lines, progress, -vv, JSON logs, metrics,
pings, and the report and JUnit fields a monitor reads. Against the emulator, through the CLI.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sprunner import __version__
from sprunner.cli.app import cli
from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, check_report, write_job
from tests.monitor import Monitor

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")

GOOD = """
version: 1
collections:
  - name: good
    requests:
      - url: https://shop.example.com/a
      - url: https://shop.example.com/b
    run: {poll_interval: 0.1s}
"""

BAD = """
version: 1
collections:
  - name: good
    requests:
      - url: https://shop.example.com/a
      - url: https://shop.example.com/fail
        custom_id: the-failing-one
    run: {poll_interval: 0.1s}
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.3) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def test_log_lines_are_stamped_and_the_apply_says_its_id_and_exit_code(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    result, report = sprunner.apply(write_job(tmp_path, GOOD))
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines
    first, last = lines[0], lines[-1]
    assert first.endswith(f"apply {report['apply_id']} started")
    assert last.endswith(f"apply {report['apply_id']} finished: exit code 0")
    assert report["sprunner_version"] == __version__


def test_exit_code_is_logged_for_invalid_job_files(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, "name: x\n")
    result = sprunner("apply", str(job))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) >= 4 and all(STAMP.match(line) for line in lines), lines
    assert "missing required key 'version'" in result.stderr
    assert lines[-1].endswith("finished: exit code 2")


def test_a_progress_line_comes_while_waiting(sprunner: Sprunner, tmp_path: Path) -> None:
    sprunner.emulator.engine.run_seconds = 1.5
    result, _ = sprunner.apply(write_job(tmp_path, GOOD), "--progress-every", "0.2")
    assert result.exit_code == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "progress: " in line]
    assert progress, result.stderr
    assert STAMP.match(progress[0])
    # Credits charged so far (`sprunner.credits`): none before a request succeeded.
    found = re.search(r"runs 0/1 done, .* credits (\d+),", progress[0])
    assert found is not None and int(found.group(1)) <= 2, progress[0]


def test_vv_logs_every_api_call_without_the_key(sprunner: Sprunner, tmp_path: Path) -> None:
    result, _ = sprunner.apply(write_job(tmp_path, GOOD), "-vv")
    assert result.exit_code == 0, result.stderr
    calls = [line for line in result.stderr.splitlines() if " api: " in line]
    routes = " ".join(calls)
    assert "api: GET /v1/async/collections -> 200 in " in routes
    assert "api: POST /v1/async/collections -> 201" in routes
    assert "api: POST /v1/async/collections/{id}/run -> 201" in routes
    assert "GET /v1/async/collections/{id}/runs/{run_id} -> 200" in routes
    assert sprunner.emulator.api_key not in result.stderr
    assert sum(sprunner.calls().values()) == len(calls)


def test_json_logs_one_object_a_line_option_after_the_command(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    result, report = sprunner.apply(write_job(tmp_path, GOOD), "--log-format", "json")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    for record in records:
        assert {"ts", "level", "event", "collection", "run_id", "message"} <= set(record)
        assert record["ts"].endswith("Z")
        # Every line, not only the first and the last: interleaved applies can be grouped.
        assert record["apply_id"] == report["apply_id"], record
    by_event = {r["event"]: r for r in records}
    assert list(by_event) == [
        "apply_started",
        "collection_created",
        "run_started",
        "run_finished",
        "apply_finished",
    ]
    run_id = report["collections"][0]["run"]["run_id"]
    created = by_event["collection_created"]
    assert (created["collection"], created["message"]) == (
        "good",
        f"good: created ({report['collections'][0]['collection_id']})",
    )
    started = by_event["run_started"]
    assert (started["collection"], started["run_id"], started["total_requests"]) == (
        "good",
        run_id,
        2,
    )
    finished = by_event["run_finished"]
    assert (finished["collection"], finished["ok"], finished["level"]) == ("good", True, "info")
    assert (finished["success_requests"], finished["credits"], finished["retries"]) == (2, 2, 0)
    done = by_event["apply_finished"]
    assert (done["exit_code"], done["ok"], done["runs"], done["credits"]) == (0, True, 1, 2)


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_after_a_success_then_a_failure_keep_the_last_success(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    metrics = tmp_path / "sprunner.prom"
    result, _ = sprunner.apply(write_job(tmp_path, GOOD), "--metrics", str(metrics))
    assert result.exit_code == 0, result.stderr
    first = metrics.read_text()
    success = _metric(first, "sprunner_last_success_timestamp_seconds")
    assert success is not None
    assert _metric(first, "sprunner_last_apply_exit_code") == 0
    assert 'sprunner_requests_total{collection="good",status="success"} 2.0' in first
    assert 'sprunner_api_calls_total{call="start run",code="201"} 1.0' in first

    result, _ = sprunner.apply(write_job(tmp_path, BAD), "--metrics", str(metrics))
    assert result.exit_code == 1
    second = metrics.read_text()
    assert _metric(second, "sprunner_last_apply_exit_code") == 1
    assert _metric(second, "sprunner_last_success_timestamp_seconds") == success
    assert 'sprunner_collection_ok{collection="good"} 0.0' in second
    assert 'sprunner_requests_total{collection="good",status="failed"} 1.0' in second
    assert 'sprunner_requests_total{collection="good",status="success"} 3.0' in second
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("sprunner.prom")] == [
        "sprunner.prom"
    ]


def test_an_unwritable_metrics_file_warns_and_keeps_the_exit_code(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    result, _ = sprunner.apply(write_job(tmp_path, GOOD), "--metrics", str(tmp_path / "no/m.prom"))
    assert result.exit_code == 0
    assert "warning: cannot write metrics" in result.stderr


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    with Monitor() as server:
        yield server


def _rid(apply_id: str) -> str:
    return str(uuid.UUID(apply_id))


@pytest.mark.parametrize(("text", "code", "last"), [(GOOD, 0, ""), (BAD, 1, "/1")])
def test_ping_start_then_exit_code(
    sprunner: Sprunner, tmp_path: Path, monitor: Monitor, text: str, code: int, last: str
) -> None:
    result, report = sprunner.apply(write_job(tmp_path, text), "--ping", monitor.url("abc-uuid"))
    assert result.exit_code == code, result.stderr
    rid = _rid(report["apply_id"])
    start, end = monitor.pings
    assert (start.method, start.path, start.query) == ("GET", "/ping/abc-uuid/start", {"rid": rid})
    assert (end.method, end.path, end.query) == ("POST", f"/ping/abc-uuid{last}", {"rid": rid})
    # The body is the summary: the exit code and the counts, a few lines.
    assert end.body.startswith(f"sprunner apply {report['apply_id']}: exit code {code}\n")
    assert "Runs: 1, 2 requests:" in end.body
    assert len(end.body.splitlines()) <= 6
    assert "abc-uuid" not in result.stderr


def test_a_ping_keeps_the_query_string_of_its_url(
    sprunner: Sprunner, tmp_path: Path, monitor: Monitor
) -> None:
    url = monitor.url("KEY/nightly-shop") + "?create=1"
    result, report = sprunner.apply(write_job(tmp_path, BAD), "--ping", url)
    assert result.exit_code == 1
    start, end = monitor.pings
    rid = _rid(report["apply_id"])
    # Not `...?create=1/start`, which a monitor reads as a success ping.
    assert (start.path, start.query) == (
        "/ping/KEY/nightly-shop/start",
        {"create": "1", "rid": rid},
    )
    assert (end.path, end.query) == ("/ping/KEY/nightly-shop/1", {"create": "1", "rid": rid})
    assert "FAILED good: 1 of 2 jobs failed or timed out" in end.body


def test_ping_reports_invalid_job_files(
    sprunner: Sprunner, tmp_path: Path, monitor: Monitor
) -> None:
    result = sprunner("apply", str(write_job(tmp_path, "name: x\n")), "--ping", monitor.url("u"))
    assert result.exit_code == 2
    assert [(p.method, p.path) for p in monitor.pings] == [
        ("GET", "/ping/u/start"),
        ("POST", "/ping/u/2"),
    ]
    assert "missing required key 'version'" in monitor.pings[1].body


def test_report_and_junit_carry_timings_ids_and_failed_job_details(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    import xmlschema

    junit = tmp_path / "junit.xml"
    result, report = sprunner.apply(write_job(tmp_path, BAD), "--junit", str(junit))
    assert result.exit_code == 1
    assert re.fullmatch(r"[0-9a-f]{32}", report["apply_id"])
    run = report["collections"][0]["run"]
    (failed,) = run["failed_jobs"]
    assert (failed["custom_id"], failed["status_code"]) == ("the-failing-one", 500)
    assert "block_reason" not in failed  # not given for this failure: absent, not empty
    assert run["started_at"] <= run["finished_at"]
    assert 0.2 <= run["duration_s"] < 30
    schema = xmlschema.XMLSchema(str(Path(__file__).parents[1] / "data" / "junit-10.xsd"))
    schema.validate(str(junit))
    case = re.search(r'<testcase [^>]*time="([0-9.]+)"', junit.read_text())
    assert case is not None and float(case.group(1)) == pytest.approx(run["duration_s"], abs=0.01)


def test_blocked_jobs_carry_their_block_reason(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, GOOD.replace("/b", "/blocked"))
    result, report = sprunner.apply(job)
    assert result.exit_code == 1
    (failed,) = report["collections"][0]["run"]["failed_jobs"]
    assert (failed["status_code"], failed["block_reason"]) == (403, "captcha")
    assert sprunner.calls()["list_jobs"] == 1


def test_a_skipped_collection_keeps_the_verdict_of_its_last_run(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, BAD.replace("run: {", "run: {when: changed, "))
    _, report = sprunner.apply(job)
    ran = report["collections"][0]["run"]
    sprunner.reset_calls()
    second, report = sprunner.apply(job)
    # Health never forgets (SPEC §9): the skipped collection's last run failed.
    assert second.exit_code == 1, second.stderr
    assert sprunner.calls() == {"list": 1}  # the verdict is the state's: no API call
    collection = report["collections"][0]
    assert collection["run"]["status"] == "skipped"
    last = collection["verdict"]
    assert (last["run_id"], last["status"], last["ok"]) == (ran["run_id"], "completed", False)
    assert (last["success_requests"], last["failed_requests"]) == (1, 1)
    assert collection["reason"] == (
        f"last run {ran['run_id']} at {last['finished_at']} failed: 1 failed or timed-out "
        "jobs; max_failed is 0; no run now: run.when is changed and nothing changed"
    )
    assert f"FAILED good: last run {ran['run_id']}" in second.stdout


def test_global_options_after_the_command_name(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, GOOD)
    key_file = tmp_path / "key"
    key_file.write_text(sprunner.emulator.api_key)
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli,
        [
            "apply",
            str(job),
            "--api-url",
            sprunner.emulator.url,
            "--state-dir",
            str(tmp_path / "elsewhere"),
            "--api-key-file",
            str(key_file),
            "--log-format",
            "json",
            "--report",
            str(report),
        ],
        env={"SCRAPINGPROS_API_KEY": ""},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    assert check_report(report)["api_url"] == sprunner.emulator.url
    assert (tmp_path / "elsewhere").is_dir()
    assert all(line.startswith("{") for line in result.stderr.splitlines())


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_usage_error_follows_the_log_format(sprunner: Sprunner, where: str) -> None:
    option = ["--log-format", "json"]
    args = [*option, "apply", "--bogus"] if where == "before" else ["apply", "--bogus", *option]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert (record["level"], record["event"], record["exit_code"]) == ("error", "usage_error", 2)
    assert record["message"].startswith("No such option '--bogus'")
    assert record["apply_id"] is None and record["command"].endswith(" apply")
    plain = CliRunner().invoke(cli, ["apply", "--bogus"])
    assert plain.exit_code == 2 and "Error: No such option '--bogus'" in plain.stderr
