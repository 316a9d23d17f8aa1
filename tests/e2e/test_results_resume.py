"""A drain killed with SIGKILL is finished by the next apply: the SAME file, no job twice,
none missing (SPEC §7 "never lost, never doubled"); whether the run is still going on or
finished while sprunner was down."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.server import running_emulator
from sprunner.results.delivery import BLOB_KIND
from sprunner.state import RunRecord, State
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.emulator_helpers import http, wait_done
from tests.e2e.results_helpers import data_file, job_ids, leftovers, manifest_of, read_rows
from tests.e2e.subprocess_helpers import Apply, wait_quiet
from tests.e2e.test_results_apply import job_text


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=4.0) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def journaled_lines(sprunner: Sprunner) -> int:
    """Rows the state says are durably in the partial file (0 before the first commit)."""
    state = State(sprunner.state_dir, sprunner.emulator.url, persist=False)
    blob = state.get_blob("shop", BLOB_KIND)
    return int(blob["checkpoint"]["lines"]) if blob else 0


@pytest.mark.parametrize("resume", ["while_running", "after_the_run_ended"])
def test_a_kill_mid_drain_is_completed_by_the_next_apply(
    sprunner: Sprunner, tmp_path: Path, resume: str
) -> None:
    out = tmp_path / "results"
    job = write_job(tmp_path, job_text(out, n=300))
    first = Apply(sprunner, job)
    first.wait_until(lambda: journaled_lines(sprunner) > 0, "a first page of results committed")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_quiet(sprunner)
    [run_id] = list(sprunner.emulator.engine.runs)
    stored = sprunner.emulator.engine.runs[run_id]
    assert list(out.glob("**/*.jsonl.gz")) == [], "never a final name for a partial file"
    assert list(out.glob("**/*.jsonl.gz.part")) != []
    if resume == "after_the_run_ended":
        with http(sprunner.emulator) as client:
            wait_done(client, {"collection_id": stored.collection_id, "run_id": run_id})
    else:
        sprunner.emulator.engine.run_seconds = 2.0

    result, report = sprunner.apply(job)

    assert result.exit_code == 0, result.output
    assert "again" not in result.output, "the partial file was resumed, not restarted"
    assert len(sprunner.emulator.engine.runs) == 1, "the run was adopted, not started again"
    run = report["collections"][0]["run"]
    assert run["adopted"] is True and run["run_id"] == run_id
    data = data_file(out, "shop", run_id)
    ids = [r["job_id"] for r in read_rows(data)]
    assert len(ids) == len(set(ids)) == 306, "no job twice"
    assert sorted(ids) == sorted(job_ids(sprunner.emulator, run_id)), "no job missing"
    assert manifest_of(data)["lines"] == run["results"]["lines"] == 306
    assert leftovers(tmp_path) == []


def test_a_run_adopted_after_its_file_was_published_is_not_drained_again(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """A kill right after the publish, before the run's in-flight mark was cleared (that
    write is not fsynced): the next apply adopts the run, and reports the published file
    from the journal instead of reading every result again."""
    sprunner.emulator.engine.run_seconds = 0.3
    out = tmp_path / "results"
    job = write_job(tmp_path, job_text(out, n=10))
    result, first = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    [run_id] = list(sprunner.emulator.engine.runs)
    published = data_file(out, "shop", run_id).read_bytes()
    state = State(sprunner.state_dir, sprunner.emulator.url)
    state.update("shop", inflight=RunRecord(run_id, time.time()))
    state.close()
    sprunner.reset_calls()

    result, second = sprunner.apply(job)

    assert result.exit_code == 0, result.output
    run = second["collections"][0]["run"]
    assert run["adopted"] is True and run["run_id"] == run_id
    assert run["results"] == first["collections"][0]["run"]["results"]
    assert sprunner.calls().get("list_jobs", 0) == 0
    assert data_file(out, "shop", run_id).read_bytes() == published
