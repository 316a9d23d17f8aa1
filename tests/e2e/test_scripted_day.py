"""A scripted day, as cron runs sprunner (issue 24): every firing a real process against the
emulator, pinging a local monitor and writing one metrics file, with JSON logs.

06:00  shop's run fails; feed's flaky job fails once and its retry fixes it   -> exit 1
06:15  shop is not due (yearly schedule): skipped, still failing by its last run -> exit 1
06:30  shop is fixed in git and catalog edited, applied with --no-run           -> exit 1
06:45  catalog's pending change runs; meanwhile a second firing meets the lock  -> exit 4
07:00  the operator fixes and clears shop with --run-now                        -> exit 0
07:15  a plain firing: everything healthy, shop skipped                         -> exit 0

At every firing: the exit code, the pings (one start and one end, paired by rid, the end
saying the exit code; never one from the exit 4) and the metrics a monitoring user reads.
The check is red from the failure until the fixing run. And the same facts in the same
words and numbers in `plan`, `status`, the summary, the report and the metrics.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.apply_helpers import check_report, write_job
from tests.monitor import Monitor, Ping

JOBS = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/a
      - url: https://shop.example.com/{shop}
    run: {{schedule: "0 0 1 1 *", poll_interval: 0.1s}}
  - name: feed
    requests:
      - url: https://feed.example.com/a
      - url: https://feed.example.com/flaky
        browser: true
    run: {{poll_interval: 0.1s, retry: {{attempts: 1}}}}
  - name: catalog
    requests:
      - url: https://catalog.example.com/{catalog}
    run: {{when: changed, poll_interval: 0.1s}}
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Firing:
    code: int
    stdout: str
    logs: list[dict[str, Any]]
    report: dict[str, Any] | None
    pings: list[Ping]
    metrics: Samples


@dataclass
class Day:
    emulator: EmulatorHandle
    monitor: Monitor
    workdir: Path

    @property
    def metrics(self) -> Path:
        return self.workdir / "sprunner.prom"

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            *("-m", "sprunner", "--api-url", self.emulator.url),
            *("--state-dir", str(self.workdir / "state"), "--log-format", "json", *args),
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "SCRAPINGPROS_API_KEY": self.emulator.api_key}

    def cron(self, *args: str) -> list[str]:
        """The crontab line: apply with a report, the metrics file and the ping."""
        return self.command(
            "apply",
            str(self.workdir / "jobs.yaml"),
            *("--report", str(self.workdir / "report.json")),
            *("--metrics", str(self.metrics), "--ping", self.monitor.url("day")),
            *args,
        )

    def finished(self, process: subprocess.CompletedProcess[str], pinged: int) -> Firing:
        report_path = self.workdir / "report.json"
        report = check_report(report_path) if report_path.exists() else None
        logs = [json.loads(line) for line in process.stderr.splitlines()]
        return Firing(
            process.returncode,
            process.stdout,
            logs,
            report,
            self.monitor.pings[pinged:],
            samples(self.metrics),
        )

    def fire(self, *args: str) -> Firing:
        (self.workdir / "report.json").unlink(missing_ok=True)
        pinged = len(self.monitor.pings)
        process = subprocess.run(
            self.cron(*args), capture_output=True, text=True, env=self.env(), timeout=120
        )
        return self.finished(process, pinged)

    def read(self, *args: str) -> Any:
        """`plan` or `status` with --json: read-only, never pinging."""
        process = subprocess.run(
            self.command(*args, str(self.workdir / "jobs.yaml"), "--json"),
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=120,
        )
        assert process.returncode == 0, process.stderr
        return json.loads(process.stdout)


def samples(path: Path) -> Samples:
    if not path.exists():
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def ok_gauges(firing: Firing) -> dict[str, float]:
    return {
        dict(labels)["collection"]: value
        for (name, labels), value in firing.metrics.items()
        if name == "sprunner_collection_ok"
    }


@pytest.fixture
def day(tmp_path: Path) -> Iterator[Day]:
    with running_emulator(mode="simulate", run_seconds=0.3) as emulator, Monitor() as monitor:
        yield Day(emulator, monitor, tmp_path)


def check_firing(firing: Firing, code: int) -> dict[str, Any]:
    """What holds at every firing that was not stopped at the lock."""
    assert firing.code == code, (firing.stdout, firing.logs)
    report = firing.report
    assert report is not None and report["exit_code"] == code
    # One start and one end, paired by the apply's id, the end saying the exit code.
    rid = str(uuid.UUID(report["apply_id"]))
    start, end = firing.pings
    assert (start.method, start.path, start.query) == ("GET", "/ping/day/start", {"rid": rid})
    suffix = "" if code == 0 else f"/{code}"
    assert (end.method, end.path, end.query) == ("POST", f"/ping/day{suffix}", {"rid": rid})
    assert end.body.startswith(f"sprunner apply {report['apply_id']}: exit code {code}\n")
    # Every log line carries the apply's id; events have their names.
    assert all(line["apply_id"] == report["apply_id"] for line in firing.logs)
    assert firing.logs[0]["event"] == "apply_started"
    assert firing.logs[-1]["event"] == "apply_finished"
    assert firing.logs[-1]["exit_code"] == code
    # The metrics: this firing's exit code, each collection's health as the report says.
    assert firing.metrics[("sprunner_last_apply_exit_code", ())] == code
    assert ok_gauges(firing) == {c["name"]: float(c["ok"]) for c in report["collections"]}
    same_story(firing)
    return report


def same_story(firing: Firing) -> None:
    """The summary, the report and the metrics say the same numbers for the same facts."""
    report = firing.report
    assert report is not None
    s = report["summary"]
    assert s["credits"] == sum(c["run"]["credits"] for c in report["collections"] if c["run"])
    if s["runs"]:
        line = (
            f"Runs: {s['runs']}, {s['total_requests']} requests: {s['success_requests']} ok, "
            f"{s['failed_requests']} failed, {s['timeout_requests']} timed out; "
            f"{s['credits']} credits charged."
        )
        assert line in firing.stdout
    for c in report["collections"]:
        verdict = c.get("verdict")
        if verdict is None:
            continue
        key = (("collection", c["name"]),)
        for status in ("success", "failed", "timeout"):
            gauge = ("sprunner_collection_last_requests", (*key, ("status", status)))
            assert firing.metrics[gauge] == verdict[f"{status}_requests"], (c["name"], status)
        if not c["ok"]:
            assert f"FAILED {c['name']}: {c['reason']}" in firing.stdout


def agree_with_status(day: Day, report: dict[str, Any]) -> dict[str, Any]:
    """`status` judges and counts each collection as the last report did."""
    status = {c["name"]: c for c in day.read("status")["collections"]}
    for c in report["collections"]:
        health = status[c["name"]]["health"]
        assert health["ok"] is c["ok"], (c["name"], health, c.get("reason"))
        verdict = c.get("verdict")
        assert health["verdict"] == verdict
        if verdict is not None:
            [run] = [r for r in status[c["name"]]["runs"] if r["run_id"] == verdict["run_id"]]
            counted = ("success_requests", "failed_requests", "timeout_requests", "credits")
            assert {k: run[k] for k in counted} == {k: verdict[k] for k in counted}
    return status


def test_a_scripted_day_from_cron(day: Day) -> None:
    write_job(day.workdir, JOBS.format(shop="fail", catalog="v1"))

    # 06:00 shop fails; feed's flaky job is fixed by its retry.
    six = day.fire()
    report = check_firing(six, 1)
    shop, feed, catalog = report["collections"]
    assert (shop["ok"], feed["ok"], catalog["ok"]) == (False, True, True)
    assert feed["run"]["retries"][0]["status"] == "completed"
    assert feed["run"]["final"]["failed_requests"] == 0
    # The retry that fixed it: no line about feed at error level, and its verdict is ok.
    feed_lines = [line for line in six.logs if line["collection"] == "feed"]
    assert {line["level"] for line in feed_lines} == {"info"}
    [finished] = [line for line in feed_lines if line["event"] == "run_finished"]
    assert (finished["ok"], finished["retries"], finished["failed_requests"]) == (True, 1, 0)
    # Credits charged: feed's plain request (1) and its browser one, on retry (5); the
    # summary, the report and the metrics counter say the same.
    assert feed["run"]["credits"] == 6 and feed["verdict"]["credits"] == 6
    assert six.metrics[("sprunner_credits_total", (("collection", "feed"),))] == 6
    assert ("sprunner_last_success_timestamp_seconds", ()) not in six.metrics
    agree_with_status(day, report)

    # 06:15 shop is not due: skipped, and still red by its last run.
    quarter = day.fire()
    report = check_firing(quarter, 1)
    shop = report["collections"][0]
    assert shop["run"]["status"] == "skipped"
    assert shop["verdict"]["run_id"] == six.report["collections"][0]["run"]["run_id"]  # type: ignore[index]
    assert "; no run now: not due: schedule '0 0 1 1 *' next at " in shop["reason"]
    assert ok_gauges(quarter)["shop"] == 0

    # 06:30 the fix (and a catalog edit) reconciled with --no-run: still red; plan and
    # status agree that catalog's change runs at the next apply.
    write_job(day.workdir, JOBS.format(shop="b", catalog="v2"))
    half = day.fire("--no-run")
    report = check_firing(half, 1)
    assert [c["action"] for c in report["collections"]] == ["updated", "unchanged", "updated"]
    assert report["collections"][0]["reason"].endswith("no run now: --no-run")
    plan = {c["name"]: c["run"] for c in day.read("plan")["collections"]}
    status = agree_with_status(day, report)
    assert plan["catalog"]["start"] is True
    assert status["catalog"]["next_run"]["reason"] == "at the next apply"
    assert plan["shop"]["start"] is False
    assert status["shop"]["next_run"]["reason"] == plan["shop"]["reason"]  # the same words

    # 06:45 a firing that runs catalog; a second one meets the lock meanwhile.
    day.emulator.engine.run_seconds = 4.0
    (day.workdir / "report.json").unlink()
    pinged = len(day.monitor.pings)
    runs_before = day.emulator.engine.calls["run"]
    first = subprocess.Popen(
        day.cron(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=day.env()
    )
    deadline = time.monotonic() + 60
    # It holds the lock and has started both its runs (feed's, catalog's): from here it
    # only polls them, so any other call would be the second firing's.
    while day.emulator.engine.calls["run"] < runs_before + 2:
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.01)
    metrics_then = day.metrics.read_text()
    calls_then = dict(day.emulator.engine.calls)
    second = subprocess.run(day.cron(), capture_output=True, text=True, env=day.env(), timeout=120)
    assert second.returncode == 4, second.stderr
    assert len(day.monitor.pings) == pinged + 1  # the first one's /start, nothing else
    assert day.metrics.read_text() == metrics_then
    writes = {k: v for k, v in day.emulator.engine.calls.items() if k != "get_run"}
    assert writes == {k: v for k, v in calls_then.items() if k != "get_run"}
    [locked_line] = [json.loads(line) for line in second.stderr.splitlines()]
    assert "holds the lock" in locked_line["message"]
    day.emulator.engine.run_seconds = 0.3
    out, err = first.communicate(timeout=120)
    overlapped = day.finished(
        subprocess.CompletedProcess(first.args, first.returncode, out, err), pinged
    )
    report = check_firing(overlapped, 1)  # shop is still red: fixed, not yet run
    assert report["collections"][2]["run"]["status"] == "completed"

    # 07:00 fix and clear in one command: green.
    seven = day.fire("--run-now", "--select", "shop")
    report = check_firing(seven, 0)
    [shop] = report["collections"]
    assert shop["run"]["status"] == "completed" and shop["verdict"]["ok"] is True
    success = seven.metrics[("sprunner_last_success_timestamp_seconds", ())]
    assert ok_gauges(seven) == {"shop": 1.0}

    # 07:15 a plain firing: all healthy, shop skipped by its schedule.
    last = day.fire()
    report = check_firing(last, 0)
    assert [c["ok"] for c in report["collections"]] == [True, True, True]
    assert report["collections"][0]["run"]["status"] == "skipped"
    assert last.metrics[("sprunner_last_success_timestamp_seconds", ())] > success
    agree_with_status(day, report)

    # The check was red from the failure until the fixing run, then green; never a ping
    # from the exit 4.
    ends = [p.path for p in day.monitor.pings if not p.path.endswith("/start")]
    assert ends == ["/ping/day/1"] * 4 + ["/ping/day"] * 2
    starts = [p.query["rid"] for p in day.monitor.pings if p.path.endswith("/start")]
    assert len(starts) == 6 and len(set(starts)) == 6
    assert re.fullmatch(r"[0-9a-f-]{36}", starts[0])
