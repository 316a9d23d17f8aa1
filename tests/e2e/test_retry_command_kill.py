"""Never twice (SPEC §4, §8) for `sprunner retry REPORT.json`: killed with SIGKILL while it
waits for its companion run, the next `sprunner retry` of the same report adopts that run
(never starts a second), and the next apply waits for it before it PUTs the companion.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.apply_helpers import Sprunner, check_report, write_job
from tests.e2e.retry_helpers import NO_RETRY, retries, retry_run_recorded, runs_of, sprunner
from tests.e2e.subprocess_helpers import Apply, recorded, wait_quiet

__all__ = ["sprunner"]  # the fixture the tests take


def killed_retry(
    sprunner: Sprunner, tmp_path: Path, *, run_seconds: float = 60.0
) -> tuple[Path, str]:
    """An apply's report with failed jobs, then a `sprunner retry` of it killed while its
    companion run (of `run_seconds`) is in progress; (the report, the companion run)."""
    sprunner.apply(write_job(tmp_path, NO_RETRY))
    report = tmp_path / "report.json"
    sprunner.emulator.engine.run_seconds = run_seconds
    retry = Apply(sprunner, report, command="retry")
    retry.wait_until(lambda: retry_run_recorded(sprunner, "news.retry"), "the retry run id")
    retry.wait_until(lambda: sprunner.calls().get("get_run", 0) > 0, "a poll of the retry run")
    assert retry.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_quiet(sprunner)
    [companion_run] = runs_of(sprunner, "news.retry")
    sprunner.emulator.engine.run_seconds = 0.2
    return report, companion_run


def test_the_next_sprunner_retry_of_the_report_adopts_the_killed_ones_run(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    report, companion_run = killed_retry(sprunner, tmp_path)
    new = tmp_path / "retried.json"
    result = sprunner("retry", str(report), "--report", str(new))
    assert result.exit_code == 1, result.output  # /fail still fails
    run = check_report(new)["collections"][0]["run"]
    [retry] = run["retries"]
    assert (retry["run_id"], retry["adopted"], retry["status"]) == (
        companion_run,
        True,
        "completed",
    )
    # Charged by whoever sees a run to its end (`sprunner.credits`): here, once (the killed
    # one wrote no report and no metrics).
    assert retry["credits"] == 1
    assert retries(run) == [(1, "completed", 2, 1)]
    assert run["final"]["failed_requests"] == 1
    assert runs_of(sprunner, "news.retry") == [companion_run]  # never started twice
    assert recorded(sprunner)["news.retry"].inflight is None

    # Its retry is over: retrying the same report again is a new request, a new run.
    result = sprunner("retry", str(report), "--report", str(new))
    assert len(runs_of(sprunner, "news.retry")) == 2


def test_the_next_apply_waits_for_the_killed_retrys_run_before_it_retries(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    _, companion_run = killed_retry(sprunner, tmp_path, run_seconds=3.0)
    retrying = NO_RETRY.replace(
        "poll_interval: 0.1s\n", "poll_interval: 0.1s\n      retry: {attempts: 1}\n"
    )
    result, applied = sprunner.apply(write_job(tmp_path, retrying))
    assert result.exit_code == 1, result.output
    assert f"waiting for run {companion_run} of news.retry" in result.output
    engine = sprunner.emulator.engine
    left, mine = (engine.runs[r] for r in runs_of(sprunner, "news.retry"))
    assert left.run_id == companion_run
    # The companion was PUT and run again only once the run left in flight had ended.
    assert mine.created_at >= left.created_at + max(job.done_offset for job in left.jobs)
    [retry] = applied["collections"][0]["run"]["retries"]
    assert (retry["run_id"], retry["adopted"]) == (mine.run_id, False)
    assert recorded(sprunner)["news.retry"].inflight is None


def test_a_killed_retrys_results_are_finished_by_the_next_retry_never_doubled(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    from sprunner.results.delivery import BLOB_KIND
    from sprunner.state import State
    from tests.e2e.results_helpers import data_file, leftovers, read_rows

    out = tmp_path / "results"
    job = (
        "version: 1\ncollections:\n  - name: news\n    requests:\n"
        "      - url: https://news.example.com/\n"
        '      - url: "https://news.example.com/p/{{ i }}/flaky"\n'
        '        foreach: {i: "{{ range(300) }}"}\n'
        f"    results: {{to: '{out}'}}\n    run: {{poll_interval: 0.1s}}\n"
    )
    sprunner.apply(write_job(tmp_path, job))
    report = tmp_path / "report.json"

    def staged() -> int:
        state = State(sprunner.state_dir, sprunner.emulator.url, persist=False)
        blob = state.get_blob("news.retry", BLOB_KIND)
        return int(blob["checkpoint"]["lines"]) if blob else 0

    sprunner.emulator.engine.run_seconds = 3.0
    retry = Apply(sprunner, report, command="retry")
    retry.wait_until(lambda: staged() > 0, "a page of the retry run's results committed")
    assert retry.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_quiet(sprunner)
    [companion_run] = runs_of(sprunner, "news.retry")

    new = tmp_path / "retried.json"
    result = sprunner("retry", str(report), "--report", str(new))

    assert result.exit_code == 0, result.output
    assert "again" not in result.output, "the partial file was resumed, not restarted"
    [retried] = check_report(new)["collections"][0]["run"]["retries"]
    assert (retried["run_id"], retried["adopted"]) == (companion_run, True)
    assert runs_of(sprunner, "news.retry") == [companion_run]
    rows = read_rows(data_file(out, "news", companion_run))
    ids = [r["job_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 300 == retried["results"]["lines"]
    stored = sprunner.emulator.engine.runs[companion_run]
    assert sorted(ids) == sorted(stored.job_id(j.index) for j in stored.jobs)
    assert {(r["status"], r["attempts"]) for r in rows} == {("completed", 2)}
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signalled_sprunner_retry_reports_the_interruption_and_is_adopted_next(
    sprunner: Sprunner, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    """SIGTERM/SIGINT while `sprunner retry` waits: exit 143/130 (never a death by the
    signal), a report that says interrupted and why, the run left recorded; the next
    `sprunner retry` of the same report adopts that run instead of starting another."""
    sprunner.apply(write_job(tmp_path, NO_RETRY))
    report = tmp_path / "report.json"
    sprunner.emulator.engine.run_seconds = 60.0
    retry = Apply(sprunner, report, command="retry")
    retry.wait_until(lambda: retry_run_recorded(sprunner, "news.retry"), "the retry run id")
    assert retry.stop(signum) == code, retry.output
    assert "Traceback" not in retry.output
    partial = check_report(retry.report)
    assert (partial["interrupted"], partial["ok"], partial["exit_code"]) == (True, False, code)
    [collection] = partial["collections"]
    assert "interrupted" in collection["error"] and "adopts" in collection["error"]
    [companion_run] = runs_of(sprunner, "news.retry")
    assert recorded(sprunner)["news.retry"].inflight is not None  # left for the next one

    wait_quiet(sprunner)
    sprunner.emulator.engine.run_seconds = 0.2
    new = tmp_path / "retried.json"
    result = sprunner("retry", str(report), "--report", str(new))
    assert result.exit_code == 1, result.output  # /fail still fails
    [retried] = check_report(new)["collections"][0]["run"]["retries"]
    assert (retried["run_id"], retried["adopted"]) == (companion_run, True)
    assert runs_of(sprunner, "news.retry") == [companion_run]  # never started twice
