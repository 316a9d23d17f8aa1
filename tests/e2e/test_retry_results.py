"""`results:` with `run.retry` (SPEC §7 and §8), end to end against the emulator: the one
results file of a run has exactly one line per request, with its final status and
`attempts`; it appears only when complete, and its manifest and the report agree with it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.apply_helpers import Sprunner, check_report, write_job
from tests.e2e.results_helpers import data_file, leftovers, manifest_of, read_rows
from tests.e2e.retry_helpers import FAILING, FLAKY, NO_RETRY, runs_of, sprunner

__all__ = ["sprunner"]  # the fixture the tests take


def with_results(job: str, to: Path, fmt: str = "jsonl.gz") -> str:
    return job.replace("    run:\n", f"    results: {{to: '{to}', format: {fmt}}}\n    run:\n")


def by_request(rows: list[dict[str, Any]]) -> dict[tuple[str, str | None], dict[str, Any]]:
    keyed = {(r["url"], r["custom_id"]): r for r in rows}
    assert len(keyed) == len(rows), "a request has more than one line"
    return keyed


def job_of(sprunner: Sprunner, run_id: str, url: str) -> str:
    """The emulator's id of the job of `url` in run `run_id`."""
    run = sprunner.emulator.engine.runs[run_id]
    [index] = [job.index for job in run.jobs if job.url == url]
    return str(run.job_id(index))


@pytest.mark.parametrize("fmt", ["jsonl.gz", "parquet"])
def test_the_results_file_has_one_line_per_request_after_the_retries(
    sprunner: Sprunner, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "results"
    result, report = sprunner.apply(write_job(tmp_path, with_results(FLAKY, out, fmt)))
    assert result.exit_code == 0, result.output
    [parent] = runs_of(sprunner, "shop")
    first_retry, second_retry = runs_of(sprunner, "shop.retry")
    data = data_file(out, "shop", parent, fmt)
    rows = by_request(read_rows(data))
    shop = "https://shop.example.com"
    assert {key: (r["status"], r["attempts"]) for key, r in rows.items()} == {
        (f"{shop}/ok", None): ("completed", 1),
        (f"{shop}/flaky", "a"): ("completed", 2),
        (f"{shop}/flaky2", None): ("completed", 3),
    }
    # Each line is the job that settled the request, with its body.
    assert rows[(f"{shop}/flaky", "a")]["job_id"] == job_of(sprunner, first_retry, f"{shop}/flaky")
    assert rows[(f"{shop}/flaky2", None)]["job_id"] == job_of(
        sprunner, second_retry, f"{shop}/flaky2"
    )
    assert all(r["html"] for r in rows.values())
    manifest = manifest_of(data)
    run = report["collections"][0]["run"]
    assert run["results"]["lines"] == manifest["lines"] == 3
    assert run["results"]["bytes"] == manifest["bytes"] == data.stat().st_size
    assert manifest["counts"] == {"completed": 3, "failed": 0, "timeout": 0}
    assert manifest["retries"] == [first_retry, second_retry]
    assert manifest["run_id"] == parent and manifest["missing"] == 0
    # One file for the collection (nothing for the companion), nothing staged left over.
    assert [p.name for p in out.rglob(f"*.{fmt}")] == [data.name]
    assert leftovers(tmp_path) == []


def test_a_request_still_failing_keeps_its_last_failure(sprunner: Sprunner, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result, report = sprunner.apply(write_job(tmp_path, with_results(FAILING, out)))
    assert result.exit_code == 1, result.output
    [parent] = runs_of(sprunner, "news")
    last_retry = runs_of(sprunner, "news.retry")[-1]
    rows = by_request(read_rows(data_file(out, "news", parent)))
    broken = rows[("https://news.example.com/fail", "broken")]
    assert (broken["status"], broken["attempts"]) == ("failed", 3)
    assert broken["job_id"] == job_of(sprunner, last_retry, "https://news.example.com/fail")
    assert rows[("https://news.example.com/flaky", None)]["attempts"] == 2
    final = report["collections"][0]["run"]["final"]
    assert Counter(r["status"] for r in rows.values()) == {
        "completed": final["success_requests"],
        "failed": final["failed_requests"],
    }
    assert report["collections"][0]["run"]["results"]["lines"] == 3


def test_a_refused_retry_publishes_the_first_runs_lines(sprunner: Sprunner, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result, report = sprunner.apply(
        write_job(tmp_path, with_results(FLAKY, out)), "--max-credits", "4"
    )
    assert result.exit_code == 1, result.output
    [parent] = runs_of(sprunner, "shop")
    rows = read_rows(data_file(out, "shop", parent))
    assert sorted((r["status"], r["attempts"]) for r in rows) == [
        ("completed", 1), ("failed", 1), ("failed", 1)
    ]  # fmt: skip
    assert report["collections"][0]["run"]["results"]["lines"] == 3
    assert leftovers(tmp_path) == []


def test_sprunner_retry_writes_its_run_as_a_run_of_its_own(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    sprunner.apply(write_job(tmp_path, with_results(NO_RETRY, out)))
    [parent] = runs_of(sprunner, "news")
    first_file = data_file(out, "news", parent)
    published = first_file.read_bytes()
    new = tmp_path / "retried.json"
    result = sprunner("retry", str(tmp_path / "report.json"), "--report", str(new))
    assert result.exit_code == 1, result.output  # /fail still fails
    [retry_run] = runs_of(sprunner, "news.retry")
    data = data_file(out, "news", retry_run)  # the collection's partition, its own run
    rows = by_request(read_rows(data))
    assert {key: (r["status"], r["attempts"]) for key, r in rows.items()} == {
        ("https://news.example.com/fail", "broken"): ("failed", 2),
        ("https://news.example.com/flaky", None): ("completed", 2),
    }
    [retried] = check_report(new)["collections"][0]["run"]["retries"]
    assert retried["results"]["lines"] == manifest_of(data)["lines"] == 2
    assert first_file.read_bytes() == published  # the earlier run's file is left alone
    assert leftovers(tmp_path) == []


def test_a_second_retry_of_the_new_report_counts_attempts_on(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    sprunner.apply(write_job(tmp_path, with_results(NO_RETRY, out)))
    new, again = tmp_path / "retried.json", tmp_path / "again.json"
    sprunner("retry", str(tmp_path / "report.json"), "--report", str(new))
    sprunner("retry", str(new), "--report", str(again))
    second = runs_of(sprunner, "news.retry")[-1]
    [row] = read_rows(data_file(out, "news", second))
    assert (row["custom_id"], row["status"], row["attempts"]) == ("broken", "failed", 3)
    report = json.loads(again.read_text())
    assert report["collections"][0]["run"]["retries"][0]["results"]["lines"] == 1


def test_a_retry_run_not_waited_to_its_end_is_left_out_of_the_file(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    from tests.e2e.retry_helpers import ledger_of
    from tests.e2e.subprocess_helpers import Apply

    out = tmp_path / "results"
    job = with_results(FLAKY, out).replace(
        "poll_interval: 0.1s", "poll_interval: 0.1s\n      timeout: 1s"
    )
    # The companion's create is slow: time to make its run outlast `timeout` once it begins.
    sprunner.emulator.faults.add("slow", 0.5, route="create")
    apply = Apply(sprunner, write_job(tmp_path, job))
    apply.wait_until(lambda: ledger_of(sprunner, "shop") is not None, "the retry to begin")
    sprunner.emulator.engine.run_seconds = 10.0
    assert apply.finish() == 1, apply.output
    report = check_report(apply.report)
    run = report["collections"][0]["run"]
    assert [r["status"] for r in run["retries"]] == ["timed_out"]
    [parent] = runs_of(sprunner, "shop")
    rows = read_rows(data_file(out, "shop", parent))
    assert sorted((r["status"], r["attempts"]) for r in rows) == [
        ("completed", 1), ("failed", 1), ("failed", 1)
    ]  # fmt: skip
    assert run["results"]["lines"] == 3
    assert leftovers(tmp_path) == []
