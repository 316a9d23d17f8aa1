"""`--max-credits` before each retry run (SPEC §8) with several collections in one apply:
a retry is checked against every first run the apply starts, also the first runs of the
collections that decided after it (the overlapped phases decide in any order).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.retry_helpers import runs_of, sprunner

__all__ = ["sprunner"]  # the fixture the tests take

ALPHA = """
  - name: alpha
    requests:
      - url: https://alpha.example.com/ok
      - url: https://alpha.example.com/{second}
    run:
      poll_interval: 0.1s
      retry:
        attempts: 1
"""

BETA = """
  - name: beta
    requests:
      - url: https://beta.example.com/a
      - url: https://beta.example.com/b
    run:
      poll_interval: 0.1s
"""


def two_collections(sprunner: Sprunner, tmp_path: Path) -> Path:
    """alpha exists (with its companion) from an earlier apply; beta is new and its create
    is slow, so alpha's run ends, and asks for its retry, before beta decided to run."""
    first = write_job(tmp_path, "version: 1\ncollections:" + ALPHA.format(second="fail"))
    result, _ = sprunner.apply(first)
    assert set(sprunner.remote()) == {"alpha", "alpha.retry"}, result.output
    sprunner.emulator.faults.add("slow", 1.5, route="create")
    text = "version: 1\ncollections:" + ALPHA.format(second="flaky") + BETA
    return write_job(tmp_path, text)


def test_a_retry_is_refused_for_the_first_run_of_a_collection_that_decided_later(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    path = two_collections(sprunner, tmp_path)
    before = runs_of(sprunner, "alpha.retry")
    # alpha's run (2) and beta's (2) take the 4 credits: alpha's retry (1) must not run.
    result, report = sprunner.apply(path, "--max-credits", "4")
    assert result.exit_code == 1, result.output  # the refused retry left alpha failing
    alpha, beta = report["collections"]
    assert (beta["name"], beta["ok"], beta["run"]["status"]) == ("beta", True, "completed")
    [refused] = alpha["run"]["retries"]
    assert refused["status"] == "refused"
    assert "--max-credits 4" in refused["reason"] and "first runs 4" in refused["reason"]
    assert alpha["ok"] is False
    assert alpha["run"]["final"]["failed_requests"] == 1
    assert report["summary"]["credits"] == 3  # charged: alpha's 1 success, beta's 2
    assert runs_of(sprunner, "alpha.retry") == before
    assert "refused" in result.output


@pytest.mark.parametrize("limit", ["5", None])
def test_a_retry_runs_when_it_fits_beside_every_first_run(
    sprunner: Sprunner, tmp_path: Path, limit: str | None
) -> None:
    path = two_collections(sprunner, tmp_path)
    result, report = sprunner.apply(path, *(["--max-credits", limit] if limit else []))
    assert result.exit_code == 0, result.output
    alpha = report["collections"][0]
    assert [r["status"] for r in alpha["run"]["retries"]] == ["completed"]
    assert alpha["run"]["final"]["failed_requests"] == 0
    assert report["summary"]["credits"] == 4  # charged: alpha 1 + its retry 1, beta 2
