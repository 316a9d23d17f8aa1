"""`sprunner results NAME` (SPEC §7): a past run's data, without applying anything; and the
README's DuckDB query over the Hive layout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.results_helpers import data_file, job_ids, leftovers, manifest_of, read_rows
from tests.e2e.test_results_apply import job_text

PLAIN = """
version: 1
collections:
  - name: shop
    requests:
      - url: "https://shop.test/p/{{ i }}"
        custom_id: "p{{ i }}"
        foreach: {i: "{{ range(12) }}"}
      - url: https://shop.test/fail
    run: {poll_interval: 0.2s, max_failed: 1}
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.5) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def mutations(sprunner: Sprunner) -> dict[str, int]:
    calls = sprunner.calls()
    return {k: calls.get(k, 0) for k in ("create", "update", "delete", "run")}


def test_results_of_the_latest_run_to_a_directory(sprunner: Sprunner, tmp_path: Path) -> None:
    result, _ = sprunner.apply(write_job(tmp_path, PLAIN))  # no results: block
    assert result.exit_code == 0, result.output
    [run_id] = list(sprunner.emulator.engine.runs)
    sprunner.reset_calls()
    out = tmp_path / "out"

    result = sprunner("results", "shop", "--to", str(out), "--json")

    assert result.exit_code == 0, result.output
    assert mutations(sprunner) == {"create": 0, "update": 0, "delete": 0, "run": 0}
    data = data_file(out, "shop", run_id)
    rows = read_rows(data)
    assert sorted(r["job_id"] for r in rows) == sorted(job_ids(sprunner.emulator, run_id))
    assert {r["url"]: r["status"] for r in rows}["https://shop.test/fail"] == "failed"
    document = json.loads(result.stdout)
    assert document["run_id"] == run_id and document["lines"] == 13 == manifest_of(data)["lines"]
    assert document["file"] == str(data)
    assert leftovers(tmp_path) == []


def test_results_of_a_chosen_run_to_the_declared_destination_in_another_format(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    out = tmp_path / "declared"
    job = write_job(tmp_path, job_text(out, n=5))
    for _ in range(2):
        result, _ = sprunner.apply(job)
        assert result.exit_code == 0, result.output
    first, second = list(sprunner.emulator.engine.runs)
    result = sprunner("results", "shop", str(job), "--run", first, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = read_rows(data_file(out, "shop", first, "jsonl"))
    assert sorted(r["job_id"] for r in rows) == sorted(job_ids(sprunner.emulator, first))
    assert second not in {r["job_id"].rsplit("-", 1)[0] for r in rows}


def test_results_of_expired_runs_say_so_with_exit_1(tmp_path: Path) -> None:
    with running_emulator(mode="simulate", run_seconds=0.3, result_retention=0.0) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        result, _ = sprunner.apply(write_job(tmp_path, PLAIN))
        assert result.exit_code == 0, result.output
        result = sprunner("results", "shop", "--to", str(tmp_path / "late"))
        [run_id] = list(emulator.engine.runs)
    assert result.exit_code == 1, result.output
    assert "expired" in result.output
    manifest = manifest_of(data_file(tmp_path / "late", "shop", run_id))
    assert manifest["expired"] == 12 and manifest["lines"] == 13


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["nosuch", "--to", "OUT"], 1, "no such collection"),
        (["shop", "--to", "OUT", "--run", "nosuchrun"], 1, "no run nosuchrun"),
        (["shop", "JOB"], 2, "no results: block"),
        (["other", "JOB"], 2, "not declared"),
        (["shop", "--to", "gopher+zzz://x/y"], 2, "--to"),
    ],
)
def test_results_usage_and_lookup_errors(
    sprunner: Sprunner, tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    job = write_job(tmp_path, PLAIN)
    result, _ = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    argv = [a.replace("OUT", str(tmp_path / "o")).replace("JOB", str(job)) for a in args]
    result = sprunner("results", *argv)
    assert result.exit_code == code, result.output
    assert words in result.output and "Traceback" not in result.output


def test_the_readme_duckdb_query_reads_the_hive_layout(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in the test extra")
    monkeypatch.chdir(tmp_path)
    job = write_job(tmp_path, job_text("results", n=10))
    for _ in range(2):
        result, _ = sprunner.apply(job)
        assert result.exit_code == 0, result.output
    query = (Path(__file__).parents[2] / "README.md").read_text()
    sql = query.split("```sql\n", 1)[1].split("```", 1)[0]
    answer = duckdb.sql(sql).fetchall()
    # collection, status, jobs: the query of the README, over both runs' files.
    assert sorted(answer) == [
        ("shop", "completed", 26), ("shop", "failed", 4), ("shop", "timeout", 2)
    ]  # fmt: skip


def test_results_completes_the_file_of_a_run_apply_stopped_waiting_for(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    from sprunner.results.delivery import BLOB_KIND
    from sprunner.state import State
    from tests.e2e.emulator_helpers import http, wait_done

    sprunner.emulator.engine.run_seconds = 3.0
    out = tmp_path / "declared"
    text = job_text(out, n=200).replace("poll_interval: 0.2s", "poll_interval: 0.2s, timeout: 1s")
    job = write_job(tmp_path, text)
    result, report = sprunner.apply(job)
    assert result.exit_code == 1, result.output
    assert report["collections"][0]["run"]["status"] == "timed_out"
    [run_id] = list(sprunner.emulator.engine.runs)
    assert list(out.rglob("*.jsonl.gz")) == [] and list(out.rglob("*.part")) != []
    stored = sprunner.emulator.engine.runs[run_id]
    with http(sprunner.emulator) as client:
        wait_done(client, {"collection_id": stored.collection_id, "run_id": run_id})

    result = sprunner("results", "shop", str(job))

    assert result.exit_code == 0, result.output
    ids = [r["job_id"] for r in read_rows(data_file(out, "shop", run_id))]
    assert len(ids) == len(set(ids)) == 206
    assert leftovers(tmp_path) == []
    blob = State(sprunner.state_dir, sprunner.emulator.url, persist=False).get_blob(
        "shop", BLOB_KIND
    )
    assert blob["checkpoint"]["finished"] is True and blob["report"]["lines"] == 206
