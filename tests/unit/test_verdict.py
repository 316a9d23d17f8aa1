"""The latest verdict of a collection (`sprunner.runs.verdict`): recorded in a real state
directory, read back, and judged against `run.max_age`."""

from __future__ import annotations

from pathlib import Path

import pytest

from sprunner.report.outcome import FinalCounts, RetryOutcome, RunOutcome
from sprunner.runs.verdict import (
    KIND,
    Verdict,
    duration,
    forget,
    health,
    iso,
    of_run,
    read,
    record,
)
from sprunner.state import State

T0 = 1_800_000_000.0


def _state(tmp_path: Path) -> State:
    return State(tmp_path / "state", "https://api.example.com", key="k")


def test_a_failed_run_keeps_the_newest_passing_one_and_survives_a_reopen(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.update("shop", id="c1")
    assert read(state, "shop") is None
    passed = record(state, "shop", Verdict("r1", T0, ok=True, total_requests=2))
    assert (passed.last_success_at, passed.last_success_run) == (T0, "r1")
    failed = record(state, "shop", Verdict("r2", T0 + 60, ok=False, reason="1 of 2 jobs failed"))
    assert (failed.last_success_at, failed.last_success_run) == (T0, "r1")
    state.close()
    state = _state(tmp_path)  # reopened: what the next command reads
    again = read(state, "shop")
    assert again == failed
    healed = record(state, "shop", Verdict("r3", T0 + 120, ok=True))
    assert (healed.last_success_at, healed.last_success_run) == (T0 + 120, "r3")
    forget(state, "shop")  # pruned: a later collection of the name starts unjudged
    assert read(state, "shop") is None


@pytest.mark.parametrize(
    "value", [None, "x", [], {"run_id": 3}, {"run_id": "r", "finished_at": "soon", "ok": True}]
)
def test_a_value_that_is_no_verdict_is_forgotten_never_a_crash(
    tmp_path: Path, value: object
) -> None:
    state = _state(tmp_path)
    state.update("shop", id="c1")
    state.put_blob("shop", KIND, value)
    assert read(state, "shop") is None


def test_the_verdict_of_a_run_is_after_its_retries() -> None:
    run = RunOutcome(
        "completed",
        "r1",
        total_requests=4,
        success_requests=1,
        failed_requests=3,
        credits=3,
        retries=(RetryOutcome(1, "completed", "r2", 3, 2, 1, 0, credits=2),),
        final=FinalCounts(4, 3, 1, 0),
        within_max_failed=True,
        started_at=T0,
        finished_at=T0 + 9,
    )
    made = of_run(run, credits=run.credits, at=T0 + 10)
    assert made is not None
    assert (made.ok, made.success_requests, made.failed_requests) == (True, 3, 1)
    assert (made.finished_at, made.retries, made.credits, made.reason) == (T0 + 9, 1, 3, None)
    # Only runs seen to their end have a verdict.
    for status in ("skipped", "error", "in_progress"):
        assert of_run(RunOutcome(status, "r1"), credits=0, at=T0) is None  # type: ignore[arg-type]
    over = RunOutcome(
        "completed", "r1", total_requests=2, failed_requests=2, within_max_failed=False
    )
    made = of_run(over, credits=0, at=T0)
    assert made is not None and made.reason == "2 of 2 jobs failed or timed out"
    timed_out = RunOutcome("timed_out", "r1", reason="still in progress after 30s")
    made = of_run(timed_out, credits=0, at=T0)
    assert made is not None and (made.ok, made.status) == (False, "timed_out")


def test_health_says_why_in_words() -> None:
    failed = Verdict("r2", T0, ok=False, reason="2 of 4 jobs failed", last_success_at=T0 - 60)
    h = health(failed, max_age=None, now=T0 + 10)
    assert (h.ok, h.stale) == (False, False)
    assert h.reason == f"last run r2 at {iso(T0)} failed: 2 of 4 jobs failed"

    fresh = Verdict("r3", T0, ok=True, last_success_at=T0, last_success_run="r3")
    assert health(fresh, max_age=3600, now=T0 + 3599).ok
    stale = health(fresh, max_age=3600, now=T0 + 3601)
    assert (stale.ok, stale.stale) == (False, True)
    assert stale.reason == (
        f"stale: the last passing run r3 finished at {iso(T0)}, longer ago than run.max_age 1h"
    )
    never = health(None, max_age=26 * 3600, now=T0)
    assert never.reason == "stale: no passing run known (run.max_age 26h)" and never.stale
    assert health(None, max_age=None, now=T0).ok  # nothing known, nothing asked: healthy

    both = health(failed, max_age=30, now=T0 + 10)
    assert both.stale and both.reason is not None and both.reason.startswith("last run r2")


def test_durations_are_written_as_in_job_files() -> None:
    assert [duration(s) for s in (93600, 5400, 90, 1.5, 0)] == [
        "26h",
        "1h30m",
        "1m30s",
        "1.5s",
        "0s",
    ]
