"""Rows that could not be written stay pending until an apply writes them (SPEC §10).

A results disk fills during the drains (a real, small tmpfs): the apply exits 1 and its
report lists the pending results; the next apply, with the disk still full, says so again
(exit 1, a warning) although it runs nothing; once there is room, the next apply finishes
every file (one row per job, none twice), although the collections are unchanged and not
run again, and no `.part` is left.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.server import running_emulator
from sprunner.results.journal import pending_results
from sprunner.state import State
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.results_helpers import data_file, job_ids, leftovers, manifest_of, read_rows

N = 20
JOB = """
version: 1
collections:
{collections}
"""
COLLECTION = """
  - name: {name}
    requests:
      - url: "https://{name}.test/{{{{ i }}}}?size=100000"
        foreach: {{i: "{{{{ range({n}) }}}}"}}
    run: {{when: changed, poll_interval: 0.2s}}
    results: {{to: "{to}", format: jsonl}}
"""
NAMES = ("alpha", "beta", "gamma")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system of its own (tmpfs), made bigger by `grow`."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def refuse_listing(emulator: Any, hostile: Any, collection: str) -> None:
    """The drain's listing (with bodies) of `collection`'s runs refused for good, not the
    failed jobs' listing."""
    from tests.e2e.hostile import CID, PREFIX, RID, Rule, json_answer

    def of_collection(call: Any) -> bool:
        stored = emulator.engine.collections.get(call["cid"])
        named = stored is not None and stored.name == collection
        return named and "include_results=true" in call.query

    hostile.rules.append(
        Rule(
            "GET",
            f"{PREFIX}/{CID}/runs/{RID}/jobs",
            lambda call: json_answer(400, '{"detail": "listing refused"}'),
            when=of_collection,
        )
    )


def killed_between_a_retry_start_and_its_record(
    emulator: Any, tmp_path: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Sprunner, Path]:
    """An apply of the flaky collection (results to `out`) killed by SIGKILL after its
    first retry run's POST was answered, before its run id was recorded."""
    import signal

    from sprunner.util.killpoints import ENV
    from tests.e2e.retry_helpers import FLAKY
    from tests.e2e.subprocess_helpers import Apply, wait_served

    sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
    job = write_job(
        tmp_path, FLAKY.replace("    run:\n", f"    results: {{to: '{out}'}}\n    run:\n")
    )
    monkeypatch.setenv(ENV, "run.posted:2")  # the first retry run's start
    killed = Apply(sprunner, job)
    monkeypatch.delenv(ENV)
    assert killed.finish() == -signal.SIGKILL, killed.output
    wait_served(sprunner)
    return sprunner, job


def grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)


def pending(sprunner: Sprunner, name: str) -> tuple[object, ...]:
    state = State(sprunner.state_dir, sprunner.emulator.url, persist=False)
    return pending_results(state, name)


def test_rows_a_full_disk_refused_are_written_by_the_next_apply_with_room(
    tmp_path: Path, small_disk: Path
) -> None:
    out = small_disk / "results"
    text = JOB.format(collections="".join(COLLECTION.format(name=n, n=N, to=out) for n in NAMES))
    with running_emulator(mode="simulate", run_seconds=0.5) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(tmp_path, text)

        result, report = sprunner.apply(job)
        assert result.exit_code == 1, result.output
        failed = [c for c in report["collections"] if "results_pending" in c]
        assert failed, "the disk filled up: some results could not be written"
        for collection in failed:
            assert collection["ok"] is False
            [entry] = collection["results_pending"]
            assert entry["run_id"] == collection["run"]["run_id"] and entry["held"] is False
        assert "still pending" in result.output and "Traceback" not in result.output
        runs = dict(emulator.engine.runs)

        # Still full: nothing to run (unchanged), but the pending rows are said again.
        result, report = sprunner.apply(job)
        assert result.exit_code == 1, result.output
        assert len(emulator.engine.runs) == len(runs), "nothing was run again"
        again = [c["name"] for c in report["collections"] if "results_pending" in c]
        assert again == [c["name"] for c in failed]
        assert "still pending" in result.output

        grow(small_disk)
        result, report = sprunner.apply(job)

        assert result.exit_code == 0, result.output
        assert len(emulator.engine.runs) == len(runs), "nothing was run again"
        for collection in report["collections"]:
            assert collection["action"] == "unchanged" and "results_pending" not in collection
        caught = {
            c["name"]: c["results_caught_up"]
            for c in report["collections"]
            if "results_caught_up" in c
        }
        assert set(caught) == {c["name"] for c in failed}
        for run_id, run in runs.items():
            name = emulator.engine.collections[run.collection_id].name
            data = data_file(out, name, run_id, "jsonl")
            ids = [r["job_id"] for r in read_rows(data)]
            assert sorted(ids) == sorted(job_ids(sprunner.emulator, run_id)), "none missing"
            assert len(ids) == len(set(ids)) == N, "none twice"
            assert manifest_of(data)["lines"] == N
            assert pending(sprunner, name) == ()
        for name, entries in caught.items():
            assert [e["lines"] for e in entries] == [N], name
    assert leftovers(small_disk) == []


@pytest.mark.parametrize(("refused", "held"), [("shop.retry", True), ("shop", False)])
def test_a_retried_run_whose_rows_could_not_be_read_is_folded_by_the_next_apply(
    tmp_path: Path, refused: str, held: bool
) -> None:
    """The drain's listing of the retry runs (or of the first run) fails for good during
    the apply: the run's one file cannot be folded, and stays pending; the next apply,
    which runs nothing, drains the first run and the retry runs the ledger knows, and
    publishes the file with each request's final outcome, never the first run's failure
    with `attempts 1`."""
    from tests.e2e.hostile import Hostile
    from tests.e2e.retry_helpers import FLAKY, runs_of

    out = tmp_path / "results"
    hostile = Hostile()
    with running_emulator(mode="simulate", run_seconds=0.2, wrap=hostile.wrap) as emulator:
        refuse_listing(emulator, hostile, refused)
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(
            tmp_path, FLAKY.replace("    run:\n", f"    results: {{to: '{out}'}}\n    run:\n")
        )
        result, report = sprunner.apply(job)
        assert result.exit_code == 1, result.output
        shop = report["collections"][0]
        [parent] = runs_of(sprunner, "shop")
        assert len(runs_of(sprunner, "shop.retry")) == 2, "the retries ran"
        assert [(p["run_id"], p["held"]) for p in shop["results_pending"]] == [(parent, held)]
        assert not list(out.rglob("*.jsonl.gz")), "nothing published of the first run alone"

        hostile.rules.clear()
        result, report = sprunner.apply(job, "--no-run")
        assert result.exit_code == 0, result.output
        assert [c["run_id"] for c in report["collections"][0]["results_caught_up"]] == [parent]
        assert runs_of(sprunner, "shop") == [parent] and len(runs_of(sprunner, "shop.retry")) == 2
    rows = read_rows(data_file(out, "shop", parent))
    assert sorted((r["url"].rsplit("/", 1)[1], r["status"], r["attempts"]) for r in rows) == [
        ("flaky", "completed", 2), ("flaky2", "completed", 3), ("ok", "completed", 1)
    ]  # fmt: skip
    assert leftovers(tmp_path) == []


def test_staged_rows_whose_state_was_deleted_are_removed_and_said(
    tmp_path: Path, small_disk: Path
) -> None:
    """The state that knew the pending rows is deleted: nothing can finish them, so the next
    apply removes their `.part` files, and says so (their rows are lost), never leaving
    them beside the data for a reader to trip on."""
    import shutil

    out = small_disk / "results"
    text = JOB.format(collections=COLLECTION.format(name="alpha", n=N, to=out))
    with running_emulator(mode="simulate", run_seconds=0.5) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(tmp_path, text)
        result, report = sprunner.apply(job)
        assert result.exit_code == 1, result.output
        [lost] = report["collections"][0]["results_pending"]
        assert leftovers(small_disk), "the full disk left staged rows"

        shutil.rmtree(sprunner.state_dir)
        grow(small_disk)
        result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    assert f"removed the staged rows of run {lost['run_id']}" in result.output
    assert leftovers(small_disk) == []
    [published] = [p for p in out.rglob("*.jsonl") if not p.name.startswith("_")]
    assert len(read_rows(published)) == N, "the new run's file is whole"


def test_a_retry_run_adopted_after_a_kill_is_noted_so_a_later_fold_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between a retry run's start and its record: the next apply adopts that run
    and notes it in the ledger, so that when that apply cannot fold the file (the retry
    runs' listing refused), the apply after it folds every retry run, and each request's
    row says its final outcome (it published the first retry's fix as `failed`)."""

    from tests.e2e.hostile import Hostile
    from tests.e2e.retry_helpers import runs_of

    out = tmp_path / "results"
    hostile = Hostile()
    with running_emulator(mode="simulate", run_seconds=0.2, wrap=hostile.wrap) as emulator:
        sprunner, job = killed_between_a_retry_start_and_its_record(
            emulator, tmp_path, out, monkeypatch
        )
        [first_retry] = runs_of(sprunner, "shop.retry")

        refuse_listing(emulator, hostile, "shop.retry")
        result, report = sprunner.apply(job)
        assert result.exit_code == 1, result.output
        run = report["collections"][0]["run"]
        assert run["retries"][0]["run_id"] == first_retry, "adopted, not started again"
        assert report["collections"][0]["results_pending"], "the fold could not be written"

        hostile.rules.clear()
        result, report = sprunner.apply(job, "--no-run")
        assert result.exit_code == 0, result.output
        [parent] = runs_of(sprunner, "shop")
        assert [c["run_id"] for c in report["collections"][0]["results_caught_up"]] == [parent]
    rows = read_rows(data_file(out, "shop", parent))
    assert sorted((r["url"].rsplit("/", 1)[1], r["status"], r["attempts"]) for r in rows) == [
        ("flaky", "completed", 2), ("flaky2", "completed", 3), ("ok", "completed", 1)
    ]  # fmt: skip
    assert leftovers(tmp_path) == []


def test_rows_of_a_run_the_api_lost_are_counted_missing_never_passed_over(tmp_path: Path) -> None:
    """A completed run whose rows could not be read is lost by the API (someone deleted its
    collection) before an apply could write them: the file published with the rows staged
    (none) says in its manifest that all of the run's jobs are missing, never "0 missing"."""
    from tests.e2e.hostile import Hostile

    out = tmp_path / "results"
    text = JOB.format(collections=COLLECTION.format(name="alpha", n=N, to=out))
    hostile = Hostile()
    with running_emulator(mode="simulate", run_seconds=0.2, wrap=hostile.wrap) as emulator:
        refuse_listing(emulator, hostile, "alpha")
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(tmp_path, text)
        result, report = sprunner.apply(job)
        assert result.exit_code == 1, result.output
        [lost] = report["collections"][0]["results_pending"]

        hostile.rules.clear()
        [collection_id] = [c.id for c in emulator.engine.collections.values()]
        emulator.engine.delete_collection(collection_id)
        result, report = sprunner.apply(job)
    assert f"run {lost['run_id']} is gone from the API" in result.output
    data = data_file(out, "alpha", lost["run_id"], "jsonl")
    assert read_rows(data) == []
    assert manifest_of(data)["missing"] == N, "every job of the lost run is counted missing"


def test_a_retry_run_never_noted_is_found_for_the_fold_when_its_parent_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between a retry run's start and its record, then the parent run is lost (its
    collection deleted): nothing adopts the retries again, so the fold of the held file
    finds that retry run by the companion's pending start, and each row says its last
    outcome (it published the first retry's fix as `failed`, attempts 1)."""

    from tests.e2e.retry_helpers import runs_of

    out = tmp_path / "results"
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        sprunner, job = killed_between_a_retry_start_and_its_record(
            emulator, tmp_path, out, monkeypatch
        )
        [parent] = runs_of(sprunner, "shop")
        [first_retry] = runs_of(sprunner, "shop.retry")
        [shop] = [c.id for c in emulator.engine.collections.values() if c.name == "shop"]
        emulator.engine.delete_collection(shop)

        result, report = sprunner.apply(job, "--no-run")
        assert "Traceback" not in result.output and result.exit_code in (0, 1), result.output
        assert [c["run_id"] for c in report["collections"][0]["results_caught_up"]] == [parent]
        assert runs_of(sprunner, "shop.retry") == [first_retry], "found, never started again"
    rows = read_rows(data_file(out, "shop", parent))
    assert sorted((r["url"].rsplit("/", 1)[1], r["status"], r["attempts"]) for r in rows) == [
        ("flaky", "completed", 2), ("flaky2", "failed", 2), ("ok", "completed", 1)
    ]  # fmt: skip


def test_a_run_in_flight_the_api_lost_is_published_with_its_missing_rows_counted(
    tmp_path: Path,
) -> None:
    """An apply killed while its run is in flight, then the collection deleted by someone:
    the run is gone before any apply saw it end, and the file of its staged rows counts the
    rest missing from the total its start answered (it said "0 missing")."""
    import signal

    from tests.e2e.subprocess_helpers import Apply, wait_served

    out = tmp_path / "results"
    text = JOB.format(collections=COLLECTION.format(name="alpha", n=N, to=out))
    with running_emulator(mode="simulate", run_seconds=3.0) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        job = write_job(tmp_path, text)
        apply = Apply(sprunner, job)
        apply.wait_until(lambda: bool(pending(sprunner, "alpha")), "its drain journaled")
        apply.process.send_signal(signal.SIGKILL)
        apply.finish()
        wait_served(sprunner)
        [run_id] = list(emulator.engine.runs)
        [collection_id] = [c.id for c in emulator.engine.collections.values()]
        emulator.engine.delete_collection(collection_id)
        result, _ = sprunner.apply(job)
        assert "Traceback" not in result.output, result.output
        result, _ = sprunner.apply(job)  # the run no longer in flight: caught up, if not yet
    data = data_file(out, "alpha", run_id, "jsonl")
    rows = read_rows(data)
    assert len(rows) + manifest_of(data)["missing"] == N, (len(rows), manifest_of(data))
