"""A kill -9 while a retry run's results are drained (SPEC §7, §8): the next apply adopts
the first run and the retry run, resumes the retry's drain from its journal, and publishes
the one results file: one line per request, no job twice, none missing.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from sprunner.retry.results import STAGED_KIND
from sprunner.state import State
from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.emulator_helpers import http, wait_done
from tests.e2e.results_helpers import data_file, leftovers, manifest_of, read_rows
from tests.e2e.retry_helpers import runs_of, sprunner
from tests.e2e.subprocess_helpers import Apply, wait_quiet

__all__ = ["sprunner"]  # the fixture the tests take

N = 300

JOB = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/ok
      - url: "https://shop.example.com/p/{{{{ i }}}}/flaky"
        custom_id: "p{{{{ i }}}}"
        foreach: {{i: "{{{{ range({n}) }}}}"}}
    results: {{to: "{to}"}}
    run:
      poll_interval: 0.1s
      retry:
        attempts: 1
"""


def staged_lines(sprunner: Sprunner) -> int:
    """Rows of retry 1 the state says are durably staged (0 before its first commit)."""
    state = State(sprunner.state_dir, sprunner.emulator.url, persist=False)
    blob: Any = state.get_blob("shop", STAGED_KIND)
    if not blob or "1" not in blob["attempts"]:
        return 0
    return int(blob["attempts"]["1"]["checkpoint"]["lines"])


@pytest.mark.parametrize("resume", ["while_running", "after_the_run_ended"])
def test_a_kill_mid_drain_of_a_retry_run_is_resumed_by_the_next_apply(
    sprunner: Sprunner, tmp_path: Path, resume: str
) -> None:
    out = tmp_path / "results"
    job = write_job(tmp_path, JOB.format(n=N, to=out))
    sprunner.emulator.engine.run_seconds = 3.0  # long enough to drain while it runs
    first = Apply(sprunner, job)
    first.wait_until(lambda: staged_lines(sprunner) > 0, "a page of the retry run staged")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_quiet(sprunner)
    [parent] = runs_of(sprunner, "shop")
    [retry_run] = runs_of(sprunner, "shop.retry")
    # Held while the retries go on: no file under a final name, only staged parts.
    assert list(out.rglob("*.jsonl.gz")) == []
    assert len(list(out.rglob("*.part"))) == 2
    # `sprunner results` does not publish the first run's rows alone meanwhile.
    held = sprunner("results", "shop", str(job), "--run", parent)
    assert held.exit_code == 1 and "held while its failed jobs are retried" in held.output
    assert list(out.rglob("*.jsonl.gz")) == []
    if resume == "after_the_run_ended":
        stored = sprunner.emulator.engine.runs[retry_run]
        with http(sprunner.emulator) as client:
            wait_done(client, {"collection_id": stored.collection_id, "run_id": retry_run})

    result, report = sprunner.apply(job)

    assert result.exit_code == 0, result.output
    assert "again" not in result.output, "the staged retry rows were resumed, not restarted"
    run = report["collections"][0]["run"]
    assert (run["run_id"], run["adopted"]) == (parent, True)
    assert [(r["run_id"], r["adopted"]) for r in run["retries"]] == [(retry_run, True)]
    assert runs_of(sprunner, "shop.retry") == [retry_run]  # never started twice
    data = data_file(out, "shop", parent)
    rows = read_rows(data)
    assert len(rows) == N + 1 == len({(r["url"], r["custom_id"]) for r in rows})
    ids = [r["job_id"] for r in rows]
    assert len(set(ids)) == len(ids), "no job twice"
    engine = sprunner.emulator.engine
    retried = engine.runs[retry_run]
    assert sorted(r["job_id"] for r in rows if r["attempts"] == 2) == sorted(
        retried.job_id(job.index) for job in retried.jobs
    ), "every retry job, none missing"
    assert all(r["status"] == "completed" for r in rows)
    assert manifest_of(data)["lines"] == run["results"]["lines"] == N + 1
    assert leftovers(tmp_path) == []


def test_a_kill_after_the_final_file_was_published_does_not_write_it_again(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """Killed after the fold's publish, before the retries were marked done: the next
    apply adopts the run and its retry runs, and reports the published file as journaled."""
    from sprunner.retry import ledger as retryledger
    from sprunner.state import RunRecord
    from tests.e2e.retry_helpers import FLAKY
    from tests.e2e.test_retry_results import with_results

    out = tmp_path / "results"
    job = write_job(tmp_path, with_results(FLAKY, out))
    result, first = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    [parent] = runs_of(sprunner, "shop")
    published = data_file(out, "shop", parent).read_bytes()
    state = State(sprunner.state_dir, sprunner.emulator.url, key=sprunner.emulator.api_key)
    state.update("shop", inflight=RunRecord(parent, 0.0))
    book = retryledger.load(state, "shop", parent)
    retryledger.save(state, "shop", book.__class__(parent, book.attempts, done=False))
    state.close()
    state.close()
    sprunner.reset_calls()

    result, second = sprunner.apply(job)

    assert result.exit_code == 0, result.output
    run = second["collections"][0]["run"]
    assert (run["run_id"], run["adopted"]) == (parent, True)
    assert [r["adopted"] for r in run["retries"]] == [True, True]
    assert run["results"] == first["collections"][0]["run"]["results"]
    # Each run's failed jobs are listed (the retry phase's judgement), nothing is drained.
    assert sprunner.calls().get("list_jobs", 0) == 1 + len(run["retries"])
    assert data_file(out, "shop", parent).read_bytes() == published
    assert leftovers(tmp_path) == []
