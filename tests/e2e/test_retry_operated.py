"""`sprunner retry` is operated like `apply` (SPEC §9): stamped lines, an id on every JSON
line, `-q`, `--metrics` and `--ping` (options after the command name, as for apply); and
a retry that mends the latest run clears the collection's verdict."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.apply_helpers import Sprunner, check_report, write_job
from tests.e2e.retry_helpers import NO_RETRY, sprunner
from tests.monitor import Monitor

__all__ = ["sprunner"]  # the fixture the tests take

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def test_retry_logs_pings_and_writes_metrics_like_apply(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, NO_RETRY)
    metrics = tmp_path / "sprunner.prom"
    _, first = sprunner.apply(job, "--metrics", str(metrics))
    before = _samples(metrics)
    report = tmp_path / "report.json"
    new = tmp_path / "retried.json"
    with Monitor() as monitor:
        result = sprunner(
            "retry",
            str(report),
            *("--report", str(new), "--metrics", str(metrics)),
            *("--ping", monitor.url("retry-check"), "-q"),
        )
    assert result.exit_code == 1, result.output  # /fail still fails
    retried = check_report(new)
    lines = result.stderr.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines
    assert lines[0].endswith(f"retry {retried['apply_id']} started")
    assert lines[-1].endswith(f"retry {retried['apply_id']} finished: exit code 1")
    # -q (after the command name): no progress lines, such as the retry run's start.
    assert not any("news.retry" in line for line in lines), lines

    rid = str(uuid.UUID(retried["apply_id"]))
    start, end = monitor.pings
    assert (start.path, start.query) == ("/ping/retry-check/start", {"rid": rid})
    assert (end.method, end.path, end.query) == ("POST", "/ping/retry-check/1", {"rid": rid})
    assert end.body.startswith(f"sprunner retry {retried['apply_id']}: exit code 1\n")

    after = _samples(metrics)
    news = (("collection", "news"),)
    assert after[("sprunner_last_apply_exit_code", ())] == 1
    # The counters add the retry run only: the first run was counted by its apply.
    success = (("collection", "news"), ("status", "success"))
    assert (
        after[("sprunner_requests_total", success)]
        == before[("sprunner_requests_total", success)] + 1
    )
    assert after[("sprunner_credits_total", news)] == before[("sprunner_credits_total", news)] + 1
    # The verdict of the collection's latest run follows the retry: the final counts.
    verdict = retried["collections"][0]["verdict"]
    assert verdict["run_id"] == first["collections"][0]["run"]["run_id"]
    assert (verdict["failed_requests"], verdict["retries"]) == (1, 1)
    assert after[("sprunner_collection_last_requests", (*news, ("status", "failed")))] == 1


def test_retry_json_lines_carry_the_apply_id(sprunner: Sprunner, tmp_path: Path) -> None:
    sprunner.apply(write_job(tmp_path, NO_RETRY))
    new = tmp_path / "retried.json"
    result = sprunner(
        "retry", str(tmp_path / "report.json"), "--report", str(new), "--log-format", "json"
    )
    assert result.exit_code == 1, result.output
    apply_id = check_report(new)["apply_id"]
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records and all(r["apply_id"] == apply_id for r in records)
    assert records[0]["event"] == "apply_started"
    assert records[-1]["event"] == "apply_finished" and records[-1]["exit_code"] == 1


def test_retry_on_a_shared_database_locks_first_and_judges(
    sprunner: Sprunner, tmp_path: Path, state_db: str
) -> None:
    """With --state-url, a retry locks the API's whole state in the database before
    anything else: another one holding it means exit 4, no ping; once free, the retry
    runs and the collection's verdict (in the database) follows it."""
    from sprunner.state import opened

    shared = ("--state-url", state_db)
    _, first = sprunner.apply(write_job(tmp_path, NO_RETRY), *shared)
    report = str(tmp_path / "report.json")
    with (
        Monitor() as monitor,
        opened(
            state_dir=tmp_path / "unused",
            state_url=state_db,
            api_url=sprunner.emulator.url,
            key=None,
        ),
    ):
        held = sprunner("retry", report, *shared, "--ping", monitor.url("r"))
        assert held.exit_code == 4, held.output
        assert monitor.pings == [] and "holds the lock" in held.stderr
    new = tmp_path / "retried.json"
    result = sprunner("retry", report, *shared, "--report", str(new))
    assert result.exit_code == 1, result.output  # /fail still fails
    verdict = check_report(new)["collections"][0]["verdict"]
    assert verdict["run_id"] == first["collections"][0]["run"]["run_id"]
    assert (verdict["retries"], verdict["failed_requests"]) == (1, 1)
