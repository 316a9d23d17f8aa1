"""Retrying failed jobs within an apply (SPEC §8), end to end against the emulator:
flaky jobs that succeed on retry, jobs that always fail, `on`, `delay`, `--max-credits`,
and the companion collection in `plan` and `--prune`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.retry_helpers import (
    FAILING,
    FLAKY,
    retries,
    runs_of,
    sprunner,
)

__all__ = ["sprunner"]  # the fixture the tests take


def test_flaky_jobs_that_succeed_on_retry_make_the_apply_ok(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    result, report = sprunner.apply(write_job(tmp_path, FLAKY))
    assert result.exit_code == 0, result.output
    assert report["ok"] is True
    run = report["collections"][0]["run"]
    # The first run as it was, then each retry, then the final per-request counts.
    assert (run["success_requests"], run["failed_requests"]) == (1, 2)
    assert retries(run) == [(1, "completed", 2, 1), (2, "completed", 1, 1)]
    assert [r["run_id"] for r in run["retries"]] == runs_of(sprunner, "shop.retry")
    assert run["final"]["success_requests"] == 3
    assert run["final"]["failed_jobs"] == []
    # Charged (`sprunner.credits`): each run's successful requests; retries included.
    assert [r["credits"] for r in run["retries"]] == [1, 1]
    assert run["credits"] == 1 + 1 + 1
    assert report["summary"]["credits"] == 3
    assert report["summary"]["retries"] == 2
    assert report["summary"]["success_requests"] == 3
    # The companion holds exactly what the last retry re-ran.
    assert sprunner.remote()["shop.retry"] == [[{"url": "https://shop.example.com/flaky2"}]]


def test_always_failing_jobs_exhaust_the_attempts_and_fail_the_apply(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    result, report = sprunner.apply(write_job(tmp_path, FAILING), "--junit", str(junit))
    assert result.exit_code == 1, result.output
    collection = report["collections"][0]
    assert collection["ok"] is False
    run = collection["run"]
    # Retry 1 re-runs both failures (flaky then succeeds); retry 2 only what still fails.
    assert retries(run) == [(1, "completed", 2, 1), (2, "completed", 1, 0)]
    final = run["final"]
    assert (final["success_requests"], final["failed_requests"]) == (2, 1)
    [job] = final["failed_jobs"]
    assert (job["url"], job["custom_id"], job["attempts"]) == (
        "https://news.example.com/fail",
        "broken",
        3,
    )
    assert "after 2 retries" in run["reason"]
    text = junit.read_text()
    assert "retry 2 run" in text and "final: 3 requests, 2 succeeded, 1 failed" in text


def test_a_success_on_retry_counts_against_max_failed_as_a_success(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = FAILING.replace("attempts: 2", "attempts: 1").replace(
        "poll_interval: 0.1s", "poll_interval: 0.1s\n      max_failed: 1"
    )
    result, report = sprunner.apply(write_job(tmp_path, job))
    # First run: 2 failed (over max_failed 1); after one retry only 1: within it.
    assert result.exit_code == 0, result.output
    assert report["collections"][0]["run"]["failed_requests"] == 2
    assert report["collections"][0]["run"]["final"]["failed_requests"] == 1


def test_on_timeout_retries_only_timed_out_jobs(sprunner: Sprunner, tmp_path: Path) -> None:
    job = """
    version: 1
    collections:
      - name: slow
        requests:
          - url: https://slow.example.com/fail
          - url: https://slow.example.com/flaky-timeout
        run:
          poll_interval: 0.1s
          max_failed: 1
          retry:
            attempts: 3
            on: [timeout]
    """
    result, report = sprunner.apply(write_job(tmp_path, job))
    assert result.exit_code == 0, result.output
    run = report["collections"][0]["run"]
    assert (run["failed_requests"], run["timeout_requests"]) == (1, 1)
    assert retries(run) == [(1, "completed", 1, 1)]
    assert sprunner.remote()["slow.retry"] == [[{"url": "https://slow.example.com/flaky-timeout"}]]
    [job_left] = run["final"]["failed_jobs"]
    assert (job_left["url"], job_left["status"], job_left["attempts"]) == (
        "https://slow.example.com/fail",
        "failed",
        1,
    )


def test_timeouts_not_in_on_are_not_retried(sprunner: Sprunner, tmp_path: Path) -> None:
    job = FLAKY.replace("/flaky2", "/timeout").replace(
        "attempts: 2", "attempts: 2\n        on: [failed]"
    )
    result, report = sprunner.apply(write_job(tmp_path, job))
    assert result.exit_code == 1
    run = report["collections"][0]["run"]
    assert retries(run) == [(1, "completed", 1, 1)]
    assert run["final"]["timeout_requests"] == 1


def test_delay_waits_before_each_retry_run(sprunner: Sprunner, tmp_path: Path) -> None:
    job = FLAKY.replace("attempts: 2", "attempts: 2\n        delay: 0.6s")
    begun = time.monotonic()
    result, _ = sprunner.apply(write_job(tmp_path, job))
    elapsed = time.monotonic() - begun
    assert result.exit_code == 0, result.output
    engine = sprunner.emulator.engine
    first, *retry_runs = (
        engine.runs[r] for r in runs_of(sprunner, "shop") + runs_of(sprunner, "shop.retry")
    )
    assert len(retry_runs) == 2
    # Each retry run began at least `delay` after the run before it ended (0.2 s runs).
    assert retry_runs[0].created_at - first.created_at >= 0.6 + 0.2 - 0.05
    assert retry_runs[1].created_at - retry_runs[0].created_at >= 0.6 + 0.2 - 0.05
    assert elapsed >= 1.2


def test_nothing_failed_means_no_companion(sprunner: Sprunner, tmp_path: Path) -> None:
    job = FLAKY.replace("/flaky2", "/fine").replace("/flaky", "/fine2")
    result, report = sprunner.apply(write_job(tmp_path, job))
    assert result.exit_code == 0
    assert "retries" not in report["collections"][0]["run"]
    assert "shop.retry" not in sprunner.remote()


def test_max_credits_refuses_a_retry_and_judges_what_ran(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    # The first run costs 3; retry 1 would cost 2 more: over --max-credits 4.
    result, report = sprunner.apply(write_job(tmp_path, FLAKY), "--max-credits", "4")
    assert result.exit_code == 1, result.output
    run = report["collections"][0]["run"]
    assert run["status"] == "completed"
    [refused] = run["retries"]
    assert (refused["status"], refused["run_id"], refused["credits"]) == ("refused", None, 0)
    assert "--max-credits 4" in refused["reason"]
    assert run["final"]["failed_requests"] == 2
    assert report["summary"]["credits"] == 1  # charged: the first run's one success
    assert runs_of(sprunner, "shop.retry") == []
    assert "refused" in result.output


def test_max_credits_allows_the_retries_that_fit(sprunner: Sprunner, tmp_path: Path) -> None:
    result, report = sprunner.apply(write_job(tmp_path, FLAKY), "--max-credits", "5")
    run = report["collections"][0]["run"]
    assert [r["status"] for r in run["retries"]] == ["completed", "refused"]
    assert result.exit_code == 1
    assert run["final"]["failed_requests"] == 1


def test_a_rerun_apply_retries_the_new_run_in_the_same_companion(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    path = write_job(tmp_path, FAILING)
    sprunner.apply(path)
    companion_ids = [
        c.id for c in sprunner.emulator.engine.collections.values() if c.name == "news.retry"
    ]
    result, report = sprunner.apply(path)
    assert result.exit_code == 1
    assert len(report["collections"][0]["run"]["retries"]) == 2
    again = [c.id for c in sprunner.emulator.engine.collections.values() if c.name == "news.retry"]
    assert again == companion_ids  # PUT again, never created twice
    assert len(runs_of(sprunner, "news.retry")) == 4


def test_plan_shows_the_companion_never_as_unmanaged(sprunner: Sprunner, tmp_path: Path) -> None:
    path = write_job(tmp_path, FLAKY)
    sprunner.apply(path)
    result = sprunner("plan", str(path))
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "shop.retry" in line)
    assert "companion" in line and "retries of shop" in line
    assert "unmanaged" not in result.output
    document = json.loads(sprunner("plan", str(path), "--json").output)
    assert document["unmanaged"] == []
    assert [(c["name"], c["parent"]) for c in document["companions"]] == [("shop.retry", "shop")]


def test_plan_knows_the_companion_after_the_state_is_lost(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    import shutil

    path = write_job(tmp_path, FLAKY)
    sprunner.apply(path)
    shutil.rmtree(sprunner.state_dir)
    document = json.loads(sprunner("plan", str(path), "--json").output)
    assert document["unmanaged"] == []
    assert [c["name"] for c in document["companions"]] == ["shop.retry"]


def test_prune_deletes_the_companion_with_its_parent_only(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    path = write_job(tmp_path, FLAKY)
    sprunner.apply(path)
    # Still declared: --prune leaves parent and companion alone.
    result, report = sprunner.apply(path, "--prune", "--no-run")
    assert result.exit_code == 0, result.output
    assert set(sprunner.remote()) == {"shop", "shop.retry"}
    # The parent's file is gone: both go.
    path.write_text("version: 1\ncollections: []\n")
    plan = sprunner("plan", str(path))
    assert "shop.retry" in plan.output and "retry companion of shop" in plan.output
    result, report = sprunner.apply(path, "--prune")
    assert result.exit_code == 0, result.output
    assert sorted((c["name"], c["action"]) for c in report["collections"]) == [
        ("shop", "deleted"),
        ("shop.retry", "deleted"),
    ]
    assert sprunner.remote() == {}
