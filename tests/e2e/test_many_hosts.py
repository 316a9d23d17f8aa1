"""Many applies sharing one PostgreSQL state (issue #16), as pods do: real subprocesses,
one real database server, one emulator.

What a user relies on: each collection is created once and run once however many applies
run at once; each is done in exactly one report and "handled by apply <id> on <host>" in
the others; a killed apply's runs are adopted by the next apply, never started again; a
database lost mid-apply starts nothing new, says so, and leaves nothing duplicated.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.apply_helpers import Sprunner, check_report, write_job
from tests.e2e.history import ListingBarrier
from tests.e2e.subprocess_helpers import DEADLINE, wait_for, wait_quiet
from tests.postgres import PostgresServer

NAMES = [f"site-{i}" for i in range(6)]
JOB = "version: 1\ncollections:\n" + "".join(
    f"  - name: {name}\n    requests:\n      - url: https://{name}.example.com/\n" for name in NAMES
)


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(mode="simulate", run_seconds=2.0) as handle:
        yield handle


def start_apply(
    emulator: EmulatorHandle, workdir: Path, state_url: str, report: Path, *args: str
) -> subprocess.Popen[str]:
    """`sprunner apply` in its own process, as one pod runs it."""
    report.unlink(missing_ok=True)
    env = {
        **os.environ,
        "SCRAPINGPROS_API_KEY": emulator.api_key,
        "SPRUNNER_STATE_URL": state_url,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    command = [sys.executable, "-m", "sprunner", "--api-url", emulator.url, "apply"]
    return subprocess.Popen(
        [*command, "jobs.yaml", "--report", str(report), *args],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=DEADLINE * 3)
    return process.returncode, out + err


def runs_per_collection(emulator: EmulatorHandle) -> dict[str, int]:
    """Runs the emulator started, by collection name."""
    engine = emulator.engine
    names = {c.id: c.name for c in list(engine.collections.values())}
    return dict(Counter(names[r.collection_id] for r in list(engine.runs.values())))


def created_once(emulator: EmulatorHandle) -> None:
    names = Counter(c.name for c in list(emulator.engine.collections.values()))
    assert names == Counter(NAMES), f"each collection must exist once: {names}"


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["collections"]}


def test_four_applies_at_once_share_the_work_each_collection_created_and_run_once(
    tmp_path: Path, state_db: str
) -> None:
    write_job(tmp_path, JOB)
    reports = [tmp_path / f"report-{i}.json" for i in range(4)]
    barrier = ListingBarrier()
    barrier.arm(len(reports))
    with running_emulator(mode="simulate", run_seconds=2.0, wrap=barrier.wrap) as emulator:
        processes = [start_apply(emulator, tmp_path, state_db, r) for r in reports]
        results = [finish(p) for p in processes]
        check_shared(emulator, reports, results)
    assert barrier.arrived == len(reports)  # all four listed before any acted


def check_shared(
    emulator: EmulatorHandle, reports: list[Path], results: list[tuple[int, str]]
) -> None:
    for code, output in results:
        assert code == 0, output
        assert "Traceback" not in output

    created_once(emulator)
    assert runs_per_collection(emulator) == dict.fromkeys(NAMES, 1)
    parsed = [by_name(check_report(r)) for r in reports]
    for report, (_, output) in zip(parsed, results, strict=True):
        elsewhere = sum(1 for c in report.values() if c["action"] == "skipped")
        if elsewhere:  # the closing summary says how many other applies took
            assert f"Handled by other applies: {elsewhere}." in output, output
    for name in NAMES:
        done = [r[name] for r in parsed if r[name]["action"] != "skipped"]
        skipped = [r[name] for r in parsed if r[name]["action"] == "skipped"]
        assert len(done) == 1, (name, done)
        assert done[0]["ok"] and done[0]["run"]["status"] == "completed"
        assert len(skipped) == 3
        for other in skipped:
            assert other["ok"] and other["run"]["status"] == "skipped"
            reason = other["run"]["reason"]
            assert reason.startswith("handled by apply ") and " on " in reason, reason


def test_a_killed_apply_releases_its_locks_and_the_next_adopts_its_runs(
    emulator: EmulatorHandle, tmp_path: Path, state_db: str
) -> None:
    write_job(tmp_path, JOB)
    first = start_apply(emulator, tmp_path, state_db, tmp_path / "killed.json")
    try:
        wait_for(lambda: len(emulator.engine.runs) == len(NAMES), "every run started")
        wait_quiet(Sprunner(emulator, tmp_path / "unused", tmp_path))  # ids recorded
    finally:
        first.send_signal(signal.SIGKILL)
        finish(first)

    report = tmp_path / "next.json"
    code, output = finish(start_apply(emulator, tmp_path, state_db, report))
    assert code == 0, output
    created_once(emulator)
    assert runs_per_collection(emulator) == dict.fromkeys(NAMES, 1)  # adopted, not again
    for name, collection in by_name(check_report(report)).items():
        assert collection["action"] == "unchanged", (name, collection)
        assert collection["run"]["adopted"] and collection["run"]["status"] == "completed"


def test_a_database_restarted_mid_apply_starts_nothing_new_and_nothing_runs_twice(
    emulator: EmulatorHandle, tmp_path: Path, postgres: PostgresServer
) -> None:
    state_db = postgres.create_database()
    write_job(tmp_path, JOB)
    # A slow pace, so that the restart comes with some runs started and some not.
    first = start_apply(emulator, tmp_path, state_db, tmp_path / "first.json", "--max-rps", "2")
    try:
        wait_for(lambda: len(emulator.engine.runs) >= 1, "a first run started")
        postgres.restart()
    finally:
        code, output = finish(first)
    assert "Traceback" not in output
    assert "lost the connection to the state database" in output
    started_by_first = runs_per_collection(emulator)
    assert all(count == 1 for count in started_by_first.values())
    report = json.loads((tmp_path / "first.json").read_text())
    done = [c for c in report["collections"] if c["ok"]]
    started = [c for c in report["collections"] if (c.get("run") or {}).get("run_id")]
    assert code == (1 if done or started else 3), output  # 3: nothing at all was done
    assert len(done) < len(NAMES), "the restart came after every collection was done"
    for collection in report["collections"]:
        if not collection["ok"]:
            assert "state database" in (collection.get("error") or ""), collection

    # The next apply, with the database back: the rest, and the first one's runs adopted.
    code, output = finish(start_apply(emulator, tmp_path, state_db, tmp_path / "next.json"))
    assert code == 0, output
    created_once(emulator)
    runs = runs_per_collection(emulator)
    assert runs == dict.fromkeys(NAMES, 1), runs


def test_an_unreachable_state_database_exits_3_with_a_clear_message_and_no_password(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    write_job(tmp_path, JOB)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://sprunner:hunter2@127.0.0.1:{port}/sprunner"
    code, output = finish(start_apply(emulator, tmp_path, url, tmp_path / "r.json"))
    assert code == 3, output
    assert "state database" in output and "hunter2" not in output
    assert "Traceback" not in output
    assert not emulator.engine.collections  # nothing was sent


ONE = (
    "version: 1\ncollections:\n  - name: solo\n    requests:\n      - url: https://solo.example/\n"
)


def test_a_run_started_as_the_database_goes_away_is_reported_and_adopted(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """SPEC §10: every run the API started is reported. The run's POST is answered after
    the database restarted: the store cannot record the run id, yet the report names it,
    and the next apply adopts it (its pending start was durable before the POST)."""
    state_db = postgres.create_database()
    write_job(tmp_path, ONE)
    with running_emulator(mode="simulate", run_seconds=1.0) as emulator:
        emulator.faults.add("slow", 5.0, route="run", times=1)  # the POST waits, then runs
        first = start_apply(emulator, tmp_path, state_db, tmp_path / "first.json")
        try:
            wait_for(lambda: emulator.engine.calls["run"] >= 1, "the run's POST sent")
            postgres.restart()
        finally:
            code, output = finish(first)
        assert "Traceback" not in output and code != 0, output
        (run_id,) = list(emulator.engine.runs)
        (solo,) = check_report(tmp_path / "first.json")["collections"]
        assert solo["run"]["run_id"] == run_id, solo
        assert "state" in solo["error"] and "the next apply adopts it" in solo["error"]

        code, output = finish(start_apply(emulator, tmp_path, state_db, tmp_path / "next.json"))
        assert code == 0, output
        (solo,) = check_report(tmp_path / "next.json")["collections"]
        assert (solo["run"]["run_id"], solo["run"]["adopted"]) == (run_id, True)
        assert list(emulator.engine.runs) == [run_id]  # adopted, never started again


TWO_TO_RETRY = """\
version: 1
collections:
  - name: partial
    requests:
      - url: https://partial.example/ok
      - url: https://partial.example/fail
    run: {max_failed: 1}
  - name: fine
    requests:
      - url: https://fine.example/
"""


def test_retry_and_apply_exclude_each_other_per_collection(
    emulator: EmulatorHandle, tmp_path: Path, state_db: str
) -> None:
    """`sprunner retry` takes each collection's lock as apply does: while an apply works on
    a collection, a retry leaves it alone (and says so), and retries it once it is free."""
    write_job(tmp_path, TWO_TO_RETRY)
    code, output = finish(start_apply(emulator, tmp_path, state_db, tmp_path / "first.json"))
    assert code == 0, output
    emulator.engine.run_seconds = 30.0
    busy = start_apply(emulator, tmp_path, state_db, tmp_path / "busy.json")
    try:
        wait_for(lambda: len(emulator.engine.runs) == 4, "the second apply's runs started")
        code, output = finish(retry_command(emulator, tmp_path, state_db, "first.json"))
        assert code == 1, output
        assert "partial: not retried: apply " in output and "is working on it" in output, output
        assert "partial.retry" not in {c.name for c in emulator.engine.collections.values()}
    finally:
        busy.send_signal(signal.SIGKILL)
        finish(busy)
    emulator.engine.run_seconds = 0.2
    code, output = finish(retry_command(emulator, tmp_path, state_db, "first.json"))
    assert "not retried" not in output, output
    assert "partial.retry" in {c.name for c in emulator.engine.collections.values()}


def retry_command(
    emulator: EmulatorHandle, workdir: Path, state_url: str, report: str
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SCRAPINGPROS_API_KEY": emulator.api_key,
        "SPRUNNER_STATE_URL": state_url,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    command = [sys.executable, "-m", "sprunner", "--api-url", emulator.url, "retry", report]
    return subprocess.Popen(
        [*command, "--report", "retried.json"],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
