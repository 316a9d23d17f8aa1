"""`sprunner retry REPORT.json` end to end (SPEC §8): one companion run per collection from
the failed jobs of an earlier report, `--dry-run`, `--select`, `--max-credits`, and a
report written by an interrupted apply.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.retry_helpers import (
    NO_RETRY,
    retries,
    sprunner,
)

__all__ = ["sprunner"]  # the fixture the tests take


def test_retry_command_dry_run_lists_what_would_run_and_sends_nothing(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    _, first = sprunner.apply(write_job(tmp_path, NO_RETRY))
    assert first["collections"][0]["run"]["failed_requests"] == 2
    sprunner.reset_calls()
    result = sprunner("retry", str(tmp_path / "report.json"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "news: would re-run 2 failed requests in news.retry (2 credits)" in result.output
    assert sprunner.calls() == {}
    assert "news.retry" not in sprunner.remote()


def test_retry_command_reruns_the_failed_jobs_of_a_report(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    from tests.e2e.apply_helpers import check_report

    job = write_job(tmp_path, NO_RETRY)
    sprunner.apply(job)
    new = tmp_path / "retried.json"
    result = sprunner("retry", str(tmp_path / "report.json"), "--report", str(new))
    assert result.exit_code == 1, result.output  # /fail still fails
    report = check_report(new)
    run = report["collections"][0]["run"]
    assert retries(run) == [(1, "completed", 2, 1)]
    assert run["final"]["failed_requests"] == 1
    [left] = run["final"]["failed_jobs"]
    assert (left["url"], left["custom_id"], left["attempts"]) == (
        "https://news.example.com/fail",
        "broken",
        2,
    )
    # Exactly the failed requests, as the job file renders them (custom_id included).
    assert sprunner.remote()["news.retry"] == [
        [
            {"url": "https://news.example.com/fail", "custom_id": "broken"},
            {"url": "https://news.example.com/flaky"},
        ]
    ]
    # Retrying the new report re-runs only what still fails, in the same companion.
    again = tmp_path / "again.json"
    result = sprunner("retry", str(new), "--report", str(again))
    run = check_report(again)["collections"][0]["run"]
    assert retries(run) == [(2, "completed", 1, 0)]
    assert run["final"]["failed_jobs"][0]["attempts"] == 3
    assert len(sprunner.remote()["news.retry"]) == 1


def test_retry_command_refuses_past_max_credits(sprunner: Sprunner, tmp_path: Path) -> None:
    sprunner.apply(write_job(tmp_path, NO_RETRY))
    new = tmp_path / "retried.json"
    result = sprunner(
        "retry", str(tmp_path / "report.json"), "--report", str(new), "--max-credits", "1"
    )
    assert result.exit_code == 1
    [refused] = json.loads(new.read_text())["collections"][0]["run"]["retries"]
    assert refused["status"] == "refused"
    assert "news.retry" not in sprunner.remote()


def test_retry_command_select_and_nothing_to_retry(sprunner: Sprunner, tmp_path: Path) -> None:
    two = NO_RETRY + ("  - name: calm\n    requests:\n      - url: https://calm.example.com/\n")
    sprunner.apply(write_job(tmp_path, two))
    result = sprunner("retry", str(tmp_path / "report.json"), "--dry-run", "--select", "calm")
    assert result.exit_code == 0, result.output
    assert "calm: nothing to retry: no failed job" in result.output
    assert "news" not in result.output.replace("news.retry", "")
    bad = sprunner("retry", str(tmp_path / "report.json"), "--select", "nope")
    assert bad.exit_code == 2


def test_retry_command_from_an_interrupted_apply_report(sprunner: Sprunner, tmp_path: Path) -> None:
    import signal

    from tests.e2e.subprocess_helpers import Apply

    job = write_job(tmp_path, NO_RETRY)
    sprunner.emulator.engine.run_seconds = 60.0
    apply = Apply(sprunner, job)
    apply.wait_until(lambda: sprunner.calls().get("get_run", 0) > 0, "a poll of the run")
    assert apply.stop(signal.SIGTERM) == 143
    partial = json.loads(apply.report.read_text())
    assert partial["collections"][0]["run"]["status"] == "in_progress"
    sprunner.reset_calls()
    result = sprunner("retry", str(apply.report), "--report", str(tmp_path / "r.json"))
    assert "news: nothing to retry: run" in result.output
    assert "still in progress: the next apply adopts it" in result.output
    assert "news.retry" not in sprunner.remote()
    assert sprunner.calls().get("run", 0) == 0


def test_retry_command_refuses_failed_jobs_that_match_no_request(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """The job file changed since the report: a failed job's request is gone from it. The
    retry is refused whole (exit 2), nothing sent: re-running only the rest would be a
    guess at what the report means (SPEC §10, "Retry re-runs exactly what failed")."""
    path = write_job(tmp_path, NO_RETRY)
    _, first = sprunner.apply(path)
    assert "retries" not in first["collections"][0]["run"]  # no run.retry: no retry phase
    path.write_text(
        NO_RETRY.replace(
            "      - url: https://news.example.com/fail\n        custom_id: broken\n", ""
        )
    )
    sprunner.reset_calls()
    new = tmp_path / "retried.json"
    result = sprunner("retry", str(tmp_path / "report.json"), "--report", str(new))
    assert result.exit_code == 2, result.output
    assert "its request is not in the job file" in result.output
    assert sprunner.calls() == {}
    assert "news.retry" not in sprunner.remote()
