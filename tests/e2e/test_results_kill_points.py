"""A SIGKILL at every step of a publication is rolled forward by the next apply (SPEC §10).

`SPRUNNER_KILL_AT` names the step where the apply (a real subprocess) kills itself
(`sprunner/killpoints.py`): each step of a run's publication (built, recorded in the state,
data file in place, manifest written, recorded finished) and of a retried collection's
(each step the retry ledger notes, each retry run's rows staged, its run seen to its end),
then the fold's publication, the ledger done and the run out of flight. The next apply
must leave exactly one line per request with its final status and attempts, a manifest
that agrees with the file and with the report, no retry run started twice, and no `.part`
anywhere.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from sprunner.util.killpoints import ENV
from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.results_helpers import data_file, leftovers, manifest_of, read_rows
from tests.e2e.retry_helpers import FLAKY, runs_of, sprunner
from tests.e2e.subprocess_helpers import Apply, wait_served

__all__ = ["sprunner"]  # the fixture the tests take

PUBLICATION = ["publish.built", "publish.recorded", "publish.data", "publish.manifest"]
PUBLICATION += ["publish.finished"]
# The steps of the two retry runs, in order: the retry phase begins (the first run over,
# still in flight: nothing of its retries recorded yet), the ledger notes each step before
# taking it (begun, PUT, started, done: 4 saves a retry), each retry run's rows are staged,
# its run seen to its end; after the fold's publication the ledger is done (save 9) and the
# parent's run leaves the flight (run.finished:3).
RETRY_STEPS = ["retry.phase", "retry.ledger:1", "retry.settled:1", "run.finished:1"]
RETRY_STEPS += ["retry.ledger:4", "retry.settled:2", "retry.ledger:8", "retry.ledger:9"]
RETRY_STEPS += ["run.finished:3"]

PLAIN = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/ok
      - url: https://shop.example.com/fail
        custom_id: f
      - url: "https://shop.example.com/p/{{{{ i }}}}"
        foreach: {{i: "{{{{ range(20) }}}}"}}
    run: {{poll_interval: 0.1s, max_failed: 1}}
    results: {{to: "{to}", format: {fmt}}}
"""


def killed_at(sprunner: Sprunner, job: Path, point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run an apply that kills itself at `point`; fail unless it did."""
    monkeypatch.setenv(ENV, point)
    apply = Apply(sprunner, job)  # the subprocess takes the environment as it is now
    monkeypatch.delenv(ENV)  # never this process (the next apply runs in it)
    assert apply.finish() == -signal.SIGKILL, f"never reached {point}:\n{apply.output}"
    wait_served(sprunner)


def check_published(
    out: Path, run_id: str, run: dict[str, Any] | None, fmt: str
) -> list[dict[str, Any]]:
    """The file of `run_id`: its manifest agrees with it, and with the report's `run`."""
    data = data_file(out, "shop", run_id, fmt)
    manifest = manifest_of(data)
    rows = read_rows(data)
    assert manifest["lines"] == len(rows) and manifest["bytes"] == data.stat().st_size
    assert manifest["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    if run is not None:
        assert (run["results"]["lines"], run["results"]["bytes"]) == (len(rows), manifest["bytes"])
    hidden = {p.name for p in data.parent.iterdir() if p.name.startswith("_")}
    assert f"_{run_id}.manifest.json" in hidden
    assert all(name.endswith(".manifest.json") for name in hidden), hidden
    assert all(r["run_id"] == run_id for r in rows)
    return rows


@pytest.mark.parametrize(
    ("point", "fmt"),
    [(p, "jsonl.gz") for p in PUBLICATION]
    + [("publish.built", "parquet"), ("publish.data", "parquet")],
)
def test_a_kill_at_any_step_of_a_publication_is_rolled_forward(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, fmt: str
) -> None:
    out = tmp_path / "results"
    job = write_job(tmp_path, PLAIN.format(to=out, fmt=fmt))
    killed_at(sprunner, job, point, monkeypatch)
    [run_id] = runs_of(sprunner, "shop")

    result, report = sprunner.apply(job)

    assert result.exit_code == 0, result.output
    assert runs_of(sprunner, "shop") == [run_id], "adopted, not run again"
    rows = check_published(out, run_id, report["collections"][0]["run"], fmt)
    assert sorted(r["job_id"] for r in rows) == sorted(
        sprunner.emulator.engine.runs[run_id].job_id(j.index)
        for j in sprunner.emulator.engine.runs[run_id].jobs
    ), "one line per job, none twice"
    assert "again" not in result.output, "rolled forward, not drained again"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("point", [*RETRY_STEPS, *PUBLICATION])
def test_a_kill_at_any_step_of_a_retried_publication_is_rolled_forward(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    out = tmp_path / "results"
    job = write_job(
        tmp_path, FLAKY.replace("    run:\n", f"    results: {{to: '{out}'}}\n    run:\n")
    )
    killed_at(sprunner, job, point, monkeypatch)
    [parent] = runs_of(sprunner, "shop")

    result, report = sprunner.apply(job)

    assert result.exit_code == 0, result.output
    run = report["collections"][0]["run"]
    retries = runs_of(sprunner, "shop.retry")
    if point == "run.finished:3":  # all done before the kill: the next apply runs anew
        assert run["run_id"] != parent and runs_of(sprunner, "shop")[0] == parent
        assert len(retries) == 2
    else:
        assert run["run_id"] == parent and run["adopted"] is True
        assert len(retries) == len(set(retries)) == 2, "each retry run started once"
        assert [r["run_id"] for r in run["retries"]] == retries, "each adopted as its own"
        assert run["final"]["success_requests"] == 3
    rows = check_published(out, parent, run if run["run_id"] == parent else None, "jsonl.gz")
    assert sorted((r["url"].rsplit("/", 1)[1], r["status"], r["attempts"]) for r in rows) == [
        ("flaky", "completed", 2), ("flaky2", "completed", 3), ("ok", "completed", 1)
    ]  # fmt: skip
    assert leftovers(tmp_path) == []
    assert not list((tmp_path / "state").rglob("*.part"))


def test_no_kill_point_is_armed_by_default() -> None:
    assert ENV not in os.environ


def test_an_apply_that_runs_nothing_after_a_kill_leaves_the_run_in_flight_to_its_adoption(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed with the first run drained and its retries to come: `apply --no-run` adopts
    nothing, so the run's unpublished rows are not "pending" (it is still going, and its
    adoption publishes them): it exits 0; the next apply adopts the run and publishes."""
    out = tmp_path / "results"
    job = write_job(
        tmp_path, FLAKY.replace("    run:\n", f"    results: {{to: '{out}'}}\n    run:\n")
    )
    killed_at(sprunner, job, "retry.phase", monkeypatch)
    [parent] = runs_of(sprunner, "shop")

    result, report = sprunner.apply(job, "--no-run")
    assert result.exit_code == 0, result.output
    assert "results_pending" not in report["collections"][0], report
    assert "still pending" not in result.output

    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    assert report["collections"][0]["run"]["run_id"] == parent
    rows = check_published(out, parent, report["collections"][0]["run"], "jsonl.gz")
    assert sorted((r["url"].rsplit("/", 1)[1], r["attempts"]) for r in rows) == [
        ("flaky", 2), ("flaky2", 3), ("ok", 1)
    ]  # fmt: skip


def test_a_retry_adopted_after_an_edit_counts_each_request_once(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed just after retry 1 started, then a request is removed from the job file: the
    next apply adopts the run and retry 1; the removed request's failure matches no request
    of today's file (settled), and retry 1 fails it again: it counts once, never as "2 of 1"
    failed jobs past `max_failed`."""
    job = write_job(
        tmp_path,
        FLAKY.replace("        attempts: 2\n", "        attempts: 2\n      max_failed: 1\n"),
    )
    killed_at(sprunner, job, "run.posted:2", monkeypatch)
    [parent] = runs_of(sprunner, "shop")
    job.write_text(job.read_text().replace("      - url: https://shop.example.com/flaky2\n", ""))

    result, report = sprunner.apply(job)

    run = report["collections"][0]["run"]
    assert run["run_id"] == parent and len(run["retries"]) == 1, run
    assert run["final"]["failed_requests"] == 1, run["final"]
    assert [j["url"].rsplit("/", 1)[1] for j in run["final"]["failed_jobs"]] == ["flaky2"]
    assert result.exit_code == 0, result.output
