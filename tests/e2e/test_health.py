"""Health never forgets (SPEC §9): a collection an apply skips is judged by its latest
verdict; `--run-now` clears it in one command; `run.max_age` makes it stale. Through the
CLI against the emulator, with the report, the metrics file and the summary read back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job

YEARLY = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/a
      - url: https://shop.example.com/{second}
    run: {{schedule: "0 0 1 1 *", poll_interval: 0.1s}}
"""

NEVER = """
version: 1
collections:
  - name: archive
    requests: [{{url: "https://archive.example.com/"}}]
    run: {{when: never, max_age: {max_age}, poll_interval: 0.1s}}
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def metric(path: Path, name: str, collection: str) -> float | None:
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("collection") == collection:
                return sample.value
    return None


def test_a_skipped_collection_whose_last_run_failed_fails_until_a_run_passes(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    metrics = tmp_path / "sprunner.prom"
    job = write_job(tmp_path, YEARLY.format(second="fail"))
    result, report = sprunner.apply(job, "--metrics", str(metrics))
    assert result.exit_code == 1
    failed = report["collections"][0]["run"]["run_id"]

    # Not due until next year: skipped, and still failing by its last run.
    junit = tmp_path / "junit.xml"
    result, report = sprunner.apply(job, "--metrics", str(metrics), "--junit", str(junit))
    assert result.exit_code == 1, result.output
    shop = report["collections"][0]
    assert shop["run"]["status"] == "skipped" and shop["ok"] is False
    verdict = shop["verdict"]
    assert (verdict["run_id"], verdict["ok"]) == (failed, False)
    assert shop["reason"].startswith(f"last run {failed} at {verdict['finished_at']} failed: ")
    next_year = time.gmtime().tm_year + 1
    assert shop["reason"].endswith(
        f"no run now: not due: schedule '0 0 1 1 *' next at {next_year}-01-01T00:00:00Z"
    )
    assert f"FAILED shop: last run {failed}" in result.stdout
    case = junit.read_text()
    assert '<failure message="last run' in case and 'type="last_run_failed"' in case
    assert metric(metrics, "sprunner_collection_ok", "shop") == 0
    # The gauge shows the last run's counts though this apply ran nothing.
    assert metric(metrics, "sprunner_collection_last_requests", "shop") is not None
    assert metric(metrics, "sprunner_collection_last_success_timestamp_seconds", "shop") is None

    # The fix is applied but not due: the data is still that of the failed run.
    fixed = write_job(tmp_path, YEARLY.format(second="b"))
    result, report = sprunner.apply(fixed)
    assert result.exit_code == 1 and report["collections"][0]["action"] == "updated"

    # --run-now: fix and clear in one command, whatever the schedule says.
    result, report = sprunner.apply(fixed, "--run-now", "--metrics", str(metrics))
    assert result.exit_code == 0, result.output
    shop = report["collections"][0]
    assert shop["run"]["status"] == "completed" and shop["verdict"]["ok"] is True
    assert metric(metrics, "sprunner_collection_ok", "shop") == 1
    finished = shop["verdict"]["last_success_at"]
    assert finished == shop["verdict"]["finished_at"]

    # Skipped again (not due): healthy by its latest run.
    result, report = sprunner.apply(fixed)
    assert result.exit_code == 0, result.output
    assert report["collections"][0]["run"]["status"] == "skipped"


def test_run_now_and_no_run_exclude_each_other(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, YEARLY.format(second="b"))
    result = sprunner("apply", str(job), "--run-now", "--no-run")
    assert result.exit_code == 2
    assert "--run-now and --no-run" in result.output
    assert sprunner.calls() == {}


def test_max_age_makes_a_collection_stale_until_a_run_passes(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    metrics = tmp_path / "sprunner.prom"
    job = write_job(tmp_path, NEVER.format(max_age="1h"))
    result, report = sprunner.apply(job, "--metrics", str(metrics))
    assert result.exit_code == 1, result.output
    archive = report["collections"][0]
    assert archive["stale"] is True and report["summary"]["stale"] == 1
    assert archive["reason"] == (
        "stale: no passing run known (run.max_age 1h); no run now: run.when is never"
    )
    junit = tmp_path / "junit.xml"
    assert sprunner("apply", str(job), "--junit", str(junit)).exit_code == 1
    assert 'type="stale"' in junit.read_text()
    assert metric(metrics, "sprunner_collection_max_age_seconds", "archive") == 3600
    assert metric(metrics, "sprunner_collection_ok", "archive") == 0

    result, report = sprunner.apply(job, "--run-now", "--metrics", str(metrics))
    assert result.exit_code == 0, result.output
    verdict = report["collections"][0]["verdict"]
    last_success = metric(metrics, "sprunner_collection_last_success_timestamp_seconds", "archive")
    assert last_success is not None
    assert (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last_success))
        == (verdict["last_success_at"])
    )

    # Half a second later the same passing run is older than a max_age of 0.5s.
    job = write_job(tmp_path, NEVER.format(max_age="0.5s"))
    time.sleep(max(0.0, last_success + 0.6 - time.time()))  # the time itself is what ages it
    result, report = sprunner.apply(job)
    assert result.exit_code == 1, result.output
    archive = report["collections"][0]
    assert archive["stale"] is True
    assert "longer ago than run.max_age 0.5s" in archive["reason"]


@pytest.mark.parametrize(("fault", "code"), [("error-before", 1), ("quota", 3)])
def test_a_run_that_could_not_start_is_not_forgotten_by_the_next_firing(
    sprunner: Sprunner, tmp_path: Path, fault: str, code: int
) -> None:
    """The run start fails for good (503s until the retries run out; a spent quota), then
    the next firing is not due: it used to exit 0 with `ok: true`, `sprunner_collection_ok
    1` and `status` ok, judging the collection by the run before (issue 24)."""
    metrics = tmp_path / "sprunner.prom"
    job = write_job(tmp_path, YEARLY.format(second="b"))
    result, _ = sprunner.apply(job)
    assert result.exit_code == 0, result.output

    sprunner.emulator.faults.add(fault, route="run")
    result, report = sprunner.apply(job, "--run-now", "--metrics", str(metrics))
    assert result.exit_code == code, result.output
    assert report["collections"][0]["ok"] is False
    sprunner.emulator.faults.clear()

    # The next firing: not due until next year, and still red by the start that failed.
    result, report = sprunner.apply(job, "--metrics", str(metrics))
    assert result.exit_code == 1, result.output
    shop = report["collections"][0]
    assert shop["run"]["status"] == "skipped" and shop["ok"] is False
    assert (shop["verdict"]["status"], shop["verdict"]["ok"]) == ("not_started", False)
    assert shop["reason"].startswith("the run start at ")
    assert "no run now: not due: schedule '0 0 1 1 *'" in shop["reason"]
    assert metric(metrics, "sprunner_collection_ok", "shop") == 0
    status = sprunner("status", "--json", str(job))
    health = json.loads(status.stdout)["collections"][0]["health"]
    assert health["ok"] is False and health["reason"].startswith("the run start at ")
    assert sprunner("status", str(job)).stdout.splitlines()[1].split()[2] == "FAILED"

    # A run that passes clears it.
    result, report = sprunner.apply(job, "--run-now", "--metrics", str(metrics))
    assert result.exit_code == 0, result.output
    assert report["collections"][0]["verdict"]["status"] == "completed"
    assert metric(metrics, "sprunner_collection_ok", "shop") == 1
