"""Never twice (SPEC §8, §4): an apply interrupted during a retry is resumed by the next
apply, which adopts the first run and the retry run and starts neither again.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.retry_helpers import (
    FAILING,
    FLAKY,
    ledger_of,
    retry_run_recorded,
    runs_of,
    sprunner,
)

__all__ = ["sprunner"]  # the fixture the tests take


def test_kill_during_a_retry_then_the_next_apply_adopts_the_retry_run(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    import signal

    from tests.e2e.subprocess_helpers import Apply, wait_quiet

    path = write_job(tmp_path, FLAKY.replace("attempts: 2", "attempts: 1"))
    engine = sprunner.emulator.engine
    first = Apply(sprunner, path)
    first.wait_until(lambda: ledger_of(sprunner, "shop") is not None, "the retry to begin")
    engine.run_seconds = 60.0  # the retry run stays in progress
    first.wait_until(lambda: retry_run_recorded(sprunner, "shop.retry"), "the retry run id")
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
    # Charged by whoever sees a run to its end (`sprunner.credits`): here, once (the killed
    # one wrote no report and no metrics).
    assert retry["credits"] == 1
    assert run["final"]["failed_requests"] == 1
    # No second parent run, no second retry run.
    assert runs_of(sprunner, "shop.retry") == [retry_run]
    assert runs_of(sprunner, "shop") == [parent_run]
    assert ledger_of(sprunner, "shop")["done"] is True

    # The next apply starts a new run (flaky2's third attempt succeeds: nothing to retry).
    result, report = sprunner.apply(path)
    assert result.exit_code == 0, result.output
    assert len(runs_of(sprunner, "shop")) == 2
    assert runs_of(sprunner, "shop.retry") == [retry_run]


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
    first.wait_until(lambda: ledger_of(sprunner, "shop") is not None, "the retry to begin")
    engine.run_seconds = 60.0
    first.wait_until(lambda: retry_run_recorded(sprunner, "shop.retry"), "the retry run id")
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
