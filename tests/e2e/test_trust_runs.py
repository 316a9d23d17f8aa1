"""Runs that repeat or never happen (issue #11, points 6-8; SPEC §2 and §4).

- `when: changed` compares with the content of the last *started* run: a change stays
  pending through `--no-run`, `--max-credits`, a schedule not due and an adopted older run.
- Adoption after an ambiguous run start never compares our clock with the API's: with the
  API 30 s behind or ahead, a 500-after-the-work or a kill -9 mid-POST gives one run.
- Create keys are the same on every host: two state directories applying at once create
  each collection once on an API that honours `Idempotency-Key`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.server import EmulatorHandle, running_emulator
from sprunner.state import RunRecord, State
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job
from tests.e2e.subprocess_helpers import DEADLINE, Apply, wait_for

JOB = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/{{{{ i }}}}
        foreach: {{i: "{{{{ range({count}) }}}}"}}
    run: {{when: {when}, poll_interval: 0.05s, timeout: 20s{extra}}}
"""


def job(directory: Path, count: int = 3, extra: str = "", when: str = "changed") -> Path:
    return write_job(directory, JOB.format(count=count, extra=extra, when=when))


def runs_of(emulator: EmulatorHandle) -> int:
    return len(emulator.engine.runs)


def run_of(report: dict[str, object]) -> dict[str, object]:
    (collection,) = report["collections"]  # type: ignore[misc]
    run: dict[str, object] = collection["run"]
    return run


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


# -- a change stays pending until a run starts with it ---------------------------------------
def test_a_change_applied_with_no_run_runs_at_the_next_apply(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    sprunner.apply(job(tmp_path))
    result, report = sprunner.apply(job(tmp_path, 4), "--no-run")
    assert report["collections"][0]["action"] == "updated" and runs_of(sprunner.emulator) == 1
    result, report = sprunner.apply(job(tmp_path, 4))
    assert result.exit_code == 0 and run_of(report)["status"] == "completed", result.output
    assert runs_of(sprunner.emulator) == 2
    result, report = sprunner.apply(job(tmp_path, 4))
    assert run_of(report)["status"] == "skipped"  # now it ran: nothing pending


def test_a_run_refused_by_max_credits_stays_pending(sprunner: Sprunner, tmp_path: Path) -> None:
    sprunner.apply(job(tmp_path))
    result, report = sprunner.apply(job(tmp_path, 4), "--max-credits", "1")
    assert result.exit_code == 1 and run_of(report)["status"] == "skipped"
    result, report = sprunner.apply(job(tmp_path, 4))
    assert result.exit_code == 0 and run_of(report)["status"] == "completed", result.output
    assert runs_of(sprunner.emulator) == 2


def test_a_change_while_the_schedule_is_not_due_runs_once_it_is(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    yearly = ', schedule: "0 0 1 1 *"'
    sprunner.apply(job(tmp_path, extra=yearly))
    result, report = sprunner.apply(job(tmp_path, 4, extra=yearly))
    assert "not due" in str(run_of(report)["reason"])
    # A year passes: the last run is now that old.
    state = State(sprunner.state_dir, sprunner.emulator.url)
    entry = state.get("shop")
    assert entry is not None and entry.last_run is not None
    state.update("shop", last_run=RunRecord(entry.last_run.run_id, entry.last_run.started_at - 4e7))
    state.close()
    result, report = sprunner.apply(job(tmp_path, 4, extra=yearly))
    assert result.exit_code == 0 and run_of(report)["status"] == "completed", result.output
    assert runs_of(sprunner.emulator) == 2


def test_a_change_is_not_consumed_by_an_older_run_adopted_under_overlap_skip(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    sprunner.apply(job(tmp_path))
    (stored,) = sprunner.emulator.engine.collections.values()
    sprunner.emulator.engine.run_seconds = 1.0
    older = sprunner.emulator.engine.start_run(stored.id)  # someone else's, old content
    result, report = sprunner.apply(job(tmp_path, 4))
    run = run_of(report)
    assert (run["run_id"], run["adopted"]) == (older["run_id"], True), result.output
    sprunner.emulator.engine.run_seconds = 0.2
    result, report = sprunner.apply(job(tmp_path, 4))
    run = run_of(report)
    assert (run["status"], run["adopted"]) == ("completed", False), result.output
    assert runs_of(sprunner.emulator) == 3


# -- clock skew: adoption never compares clocks --------------------------------------------------
@pytest.mark.parametrize("skew", [-30.0, 30.0], ids=["api-behind", "api-ahead"])
def test_a_start_answered_500_after_the_work_is_one_run_whatever_the_api_clock(
    tmp_path: Path, skew: float
) -> None:
    with running_emulator(mode="simulate", run_seconds=0.2, clock_skew=skew) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        always = job(tmp_path, when="always")
        sprunner.apply(always, "--no-run")  # the collection exists, with no run
        emulator.faults.once("error-after", route="run")
        result, report = sprunner.apply(always)
        assert result.exit_code == 0, result.output
        assert runs_of(emulator) == 1
        assert run_of(report)["status"] == "completed"


@pytest.mark.parametrize("skew", [-30.0, 30.0], ids=["api-behind", "api-ahead"])
def test_a_kill_during_the_run_post_is_one_run_whatever_the_api_clock(
    tmp_path: Path, skew: float
) -> None:
    with running_emulator(mode="simulate", run_seconds=0.2, clock_skew=skew) as emulator:
        sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
        always = job(tmp_path, when="always")
        sprunner.apply(always, "--no-run")
        slow = emulator.faults.add("slow", 0.5, route="run", times=1)  # the work comes late
        killed = Apply(sprunner, always)
        killed.wait_until(lambda: slow.fired == 1, "the run POST sent")
        killed.stop(signal.SIGKILL)
        wait_for(lambda: runs_of(emulator) == 1, "the killed POST's run")
        # Let it end, so that only the pending start can find it (not `overlap: skip`).
        (stored,) = emulator.engine.runs.values()
        wait_for(
            lambda: (
                emulator.engine.get_run(stored.collection_id, stored.run_id)["status"]
                == "completed"
            ),
            "the run's end",
        )
        result, report = sprunner.apply(always)
        assert result.exit_code == 0, result.output
        run = run_of(report)
        assert run["adopted"] is True and runs_of(emulator) == 1, result.output


def test_the_emulator_clock_skew_shows_in_created_at_and_date(tmp_path: Path) -> None:
    import email.utils
    import time

    import httpx

    with running_emulator(clock_skew=-30.0) as emulator:
        answer = httpx.get(
            f"{emulator.url}/v1/async/collections",
            headers={"Authorization": f"Bearer {emulator.api_key}"},
        )
        collection = emulator.engine.create_collection({"name": "x", "requests": []})
        run = emulator.engine.start_run(collection["id"])
    date = email.utils.parsedate_to_datetime(answer.headers["date"]).timestamp()
    assert abs(date - (time.time() - 30)) < 3
    assert abs(run["created_at"] - (time.time() - 30)) < 3


# -- two hosts: one create ---------------------------------------------------------------------
def test_two_state_directories_applying_at_once_create_each_collection_once(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    emulator = sprunner.emulator
    # Both hosts' creates in flight together, even when a loaded machine starts one of the
    # two interpreters a second or two after the other.
    emulator.faults.add("slow", 2.5, route="create")
    text = JOB.format(count=3, extra="", when="always").replace("name: shop", "name: {n}")
    jobs = write_job(
        tmp_path,
        "version: 1\ncollections:\n"
        + "".join(
            text.split("collections:\n", 1)[1].replace("{n}", n) for n in ("one", "two", "three")
        ),
    )
    env = {**os.environ, "SCRAPINGPROS_API_KEY": emulator.api_key}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                *("-m", "sprunner", "--api-url", emulator.url),
                *("--state-dir", str(tmp_path / f"state-{host}"), "apply", str(jobs), "--no-run"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for host in ("a", "b")
    ]
    outputs = [p.communicate(timeout=DEADLINE)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert emulator.engine.calls["create"] == 6  # both hosts sent every create
    names = sorted(c.name for c in emulator.engine.collections.values())
    assert names == ["one", "three", "two"], names


def test_a_collection_deleted_remotely_is_created_again_despite_the_replay(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """Same content, same key: the API replays the first create, whose collection is gone.
    sprunner sees the replay and creates it again under a new generation."""
    sprunner.apply(job(tmp_path))
    (first,) = sprunner.emulator.engine.collections.values()
    sprunner.emulator.engine.delete_collection(first.id)
    result, report = sprunner.apply(job(tmp_path))
    assert result.exit_code == 0, result.output
    (again,) = sprunner.emulator.engine.collections.values()
    assert again.id != first.id and report["collections"][0]["collection_id"] == again.id
    assert again.requests == first.requests


@pytest.mark.parametrize(
    ("args", "starts"),
    [((), True), (("--no-run",), False), (("--max-credits", "1"), False)],
    ids=["run", "no-run", "run-refused"],
)
def test_a_collection_deleted_remotely_after_a_lost_state_is_created_again(
    sprunner: Sprunner, tmp_path: Path, args: tuple[str, ...], starts: bool
) -> None:
    """The stateful test's history: the state is lost, the collection deleted remotely, and
    the next apply's deterministic key replays the deleted one's create. Without the state
    nothing says the id is gone: a run start that follows tells (its 404), else one GET
    does; either way the create is sent again under a new generation. `--max-credits`
    refuses the run after the create was made as if it would start."""
    state = Path(os.environ["SPRUNNER_STATE_DIR"])
    sprunner.apply(job(tmp_path), "--no-run")
    (first,) = sprunner.emulator.engine.collections.values()
    for attempt in range(2):  # the second time, generation 1 is lost with the state too
        for path in state.rglob("*"):
            if path.is_file() and path.name != "lock":
                path.unlink()
        (current,) = sprunner.emulator.engine.collections.values()
        sprunner.emulator.engine.delete_collection(current.id)
        runs_before = runs_of(sprunner.emulator)
        result, report = sprunner.apply(job(tmp_path), *args)
        # A run refused by --max-credits fails the apply (exit 1), and says why.
        assert result.exit_code == (0 if starts or "--no-run" in args else 1), result.output
        (again,) = sprunner.emulator.engine.collections.values()
        assert again.id not in (first.id, current.id), attempt
        (collection,) = report["collections"]
        assert (collection["collection_id"], collection["action"]) == (again.id, "created")
        assert runs_of(sprunner.emulator) - runs_before == int(starts), attempt
        if starts:
            assert run_of(report)["status"] == "completed"
        assert again.requests == first.requests


def test_a_first_apply_with_runs_makes_no_replay_check(sprunner: Sprunner, tmp_path: Path) -> None:
    """On a fresh state the run start checks the create (a replay would answer 404): no GET
    of the collection, so a first apply costs create, run and polls only."""
    result, report = sprunner.apply(job(tmp_path))
    assert result.exit_code == 0 and run_of(report)["status"] == "completed", result.output
    calls = sprunner.emulator.engine.calls
    assert (calls["create"], calls["run"], calls["get"]) == (1, 1, 0), calls
