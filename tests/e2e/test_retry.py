"""Retrying failed jobs end to end (SPEC §8): the CLI against the emulator over sockets.

Simulate mode decides outcomes by words in the URL: `flaky` fails the first attempt of a
request (counted per (url, custom_id) across every collection of the emulator) and succeeds
later, `flaky2` the first two, `fail` always fails, `timeout` always times out, and a flaky
URL that also says `timeout` times out while it is flaky.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job

FLAKY = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/ok
      - url: https://shop.example.com/flaky
        custom_id: a
      - url: https://shop.example.com/flaky2
    run:
      poll_interval: 0.1s
      retry:
        attempts: 2
"""

FAILING = """
version: 1
collections:
  - name: news
    requests:
      - url: https://news.example.com/
      - url: https://news.example.com/fail
        custom_id: broken
      - url: https://news.example.com/flaky
    run:
      poll_interval: 0.1s
      retry:
        attempts: 2
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def runs_of(sprunner: Sprunner, name: str) -> list[str]:
    """The emulator's run ids of the collection `name`, oldest first."""
    engine = sprunner.emulator.engine
    ids = {c.id for c in engine.collections.values() if c.name == name}
    runs = [r for r in engine.runs.values() if r.collection_id in ids]
    return [r.run_id for r in sorted(runs, key=lambda r: r.created_at)]


def retries(run: dict[str, Any]) -> list[tuple[int, str, int, int]]:
    return [
        (r["attempt"], r["status"], r["requests"], r["success_requests"]) for r in run["retries"]
    ]


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
    assert [r["credits"] for r in run["retries"]] == [2, 1]
    assert run["credits"] == 3 + 2 + 1  # credits include retries
    assert report["summary"]["credits"] == 6
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
    assert report["summary"]["credits"] == 3
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


def _ledger(sprunner: Sprunner, name: str) -> Any:
    from sprunner.state import State

    return State(sprunner.state_dir, sprunner.emulator.url, persist=False).get_blob(name, "retry")


def _retry_run_recorded(sprunner: Sprunner, name: str) -> bool:
    from tests.e2e.subprocess_helpers import recorded

    entry = recorded(sprunner).get(name)
    return entry is not None and entry.inflight is not None and entry.inflight.run_id is not None


def test_kill_during_a_retry_then_the_next_apply_adopts_the_retry_run(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    import signal

    from tests.e2e.subprocess_helpers import Apply, wait_quiet

    path = write_job(tmp_path, FLAKY.replace("attempts: 2", "attempts: 1"))
    engine = sprunner.emulator.engine
    first = Apply(sprunner, path)
    first.wait_until(lambda: _ledger(sprunner, "shop") is not None, "the retry to begin")
    engine.run_seconds = 60.0  # the retry run stays in progress
    first.wait_until(lambda: _retry_run_recorded(sprunner, "shop.retry"), "the retry run id")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_quiet(sprunner)
    [retry_run] = runs_of(sprunner, "shop.retry")
    [parent_run] = runs_of(sprunner, "shop")
    engine.run_seconds = 0.2

    result, report = sprunner.apply(path)
    assert result.exit_code == 1, result.output  # flaky2 still fails after one retry
    run = report["collections"][0]["run"]
    assert (run["run_id"], run["adopted"]) == (parent_run, True)
    [retry] = run["retries"]
    assert (retry["run_id"], retry["adopted"], retry["status"]) == (retry_run, True, "completed")
    assert retry["credits"] == 0
    assert run["final"]["failed_requests"] == 1
    # No second parent run, no second retry run.
    assert runs_of(sprunner, "shop.retry") == [retry_run]
    assert runs_of(sprunner, "shop") == [parent_run]
    assert _ledger(sprunner, "shop")["done"] is True

    # The next apply starts a new run (flaky2's third attempt succeeds: nothing to retry).
    result, report = sprunner.apply(path)
    assert result.exit_code == 0, result.output
    assert len(runs_of(sprunner, "shop")) == 2
    assert runs_of(sprunner, "shop.retry") == [retry_run]


NO_RETRY = FAILING.replace("      retry:\n        attempts: 2\n", "")


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


def test_a_run_whose_failures_were_retried_is_never_retried_again(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    from sprunner.state import RunRecord, State

    path = write_job(tmp_path, FAILING)
    sprunner.apply(path)
    [parent_run] = runs_of(sprunner, "news")
    retry_runs = runs_of(sprunner, "news.retry")
    # As if killed after the retries were over, before the parent run was marked done:
    # the next apply adopts the parent run again.
    state = State(sprunner.state_dir, sprunner.emulator.url, key=sprunner.emulator.api_key)
    state.update("news", inflight=RunRecord(parent_run, time.time()))
    state.compact()
    result, report = sprunner.apply(path)
    assert result.exit_code == 1
    run = report["collections"][0]["run"]
    assert (run["run_id"], run["adopted"]) == (parent_run, True)
    assert [(r["run_id"], r["adopted"]) for r in run["retries"]] == [
        (retry_run, True) for retry_run in retry_runs
    ]
    assert run["final"]["failed_requests"] == 1
    assert runs_of(sprunner, "news.retry") == retry_runs  # none started again
    assert runs_of(sprunner, "news") == [parent_run]


def test_sigterm_during_a_retry_reports_the_run_in_flight_and_retry_leaves_it(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    import signal

    from tests.e2e.apply_helpers import check_report
    from tests.e2e.subprocess_helpers import Apply

    path = write_job(tmp_path, FLAKY.replace("attempts: 2", "attempts: 1"))
    engine = sprunner.emulator.engine
    first = Apply(sprunner, path)
    first.wait_until(lambda: _ledger(sprunner, "shop") is not None, "the retry to begin")
    engine.run_seconds = 60.0
    first.wait_until(lambda: _retry_run_recorded(sprunner, "shop.retry"), "the retry run id")
    assert first.stop(signal.SIGTERM) == 143
    partial = check_report(first.report)
    run = partial["collections"][0]["run"]
    assert run["status"] == "in_progress"  # its retries were not over
    [parent_run] = runs_of(sprunner, "shop")
    assert run["run_id"] == parent_run

    result = sprunner("retry", str(first.report), "--dry-run")
    assert "still in progress: the next apply adopts it" in result.output

    engine.run_seconds = 0.2
    result, report = sprunner.apply(path)
    run = report["collections"][0]["run"]
    assert (run["run_id"], run["adopted"]) == (parent_run, True)
    assert [r["adopted"] for r in run["retries"]] == [True]
    assert len(runs_of(sprunner, "shop.retry")) == 1


def test_retry_command_reports_failed_jobs_that_match_no_request(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    from tests.e2e.apply_helpers import check_report

    path = write_job(tmp_path, NO_RETRY)
    _, first = sprunner.apply(path)
    assert "retries" not in first["collections"][0]["run"]  # no run.retry: no retry phase
    # The job file changed since: the failing /fail request is gone from it.
    path.write_text(
        NO_RETRY.replace(
            "      - url: https://news.example.com/fail\n        custom_id: broken\n", ""
        )
    )
    new = tmp_path / "retried.json"
    result = sprunner("retry", str(tmp_path / "report.json"), "--report", str(new))
    assert "matches no request" in result.output
    run = check_report(new)["collections"][0]["run"]
    assert retries(run) == [(1, "completed", 1, 1)]
    assert run["final"]["unmatched"] == 1
    assert [j["url"] for j in run["final"]["failed_jobs"]] == ["https://news.example.com/fail"]
    assert sprunner.remote()["news.retry"] == [[{"url": "https://news.example.com/flaky"}]]
