"""Interrupted applies lose nothing and double nothing (SPEC §3 exit codes, §4).

Each test runs `python -m sprunner apply` as a real subprocess against an emulator in this
process (which keeps its state across applies), stops it at a chosen point — SIGKILL, SIGINT
or SIGTERM — and applies again without faults. Points are reached by polling what the
emulator has seen and what the state directory's journal holds, never by fixed sleeps.

After the second apply: every collection exists exactly once with exactly the rendered
requests, and each collection was run exactly once: a run left in flight is adopted (same
run id), never started a second time.
"""

from __future__ import annotations

import http.server
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.apply_helpers import Sprunner, check_report, write_job
from tests.e2e.subprocess_helpers import Apply, recorded, wait_for, wait_quiet

JOB = """
version: 1
collections:
  - name: alpha
    requests:
      - url: "https://alpha.example.com/{{ page }}"
        foreach:
          page: "{{ range(3) }}"
    run:
      poll_interval: 0.1s
  - name: beta
    requests:
      - url: https://beta.example.com/
      - url: https://beta.example.com/fail
    run:
      poll_interval: 0.1s
      max_failed: 1
"""
RENDERED = {
    "alpha": [{"url": f"https://alpha.example.com/{page}"} for page in range(3)],
    "beta": [{"url": "https://beta.example.com/"}, {"url": "https://beta.example.com/fail"}],
}
NAMES = tuple(RENDERED)
LONG_RUN = 60.0  # engine.run_seconds while a run must stay in progress
SHORT_RUN = 0.2
GAMMA = "https://gamma.example.com/"
GAMMA_JOB = f"""
  - name: gamma
    requests:
      - url: {GAMMA}
    run:
      poll_interval: 0.1s
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=SHORT_RUN) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path)


# --- helpers ------------------------------------------------------------------------------


def run_ids_recorded(sprunner: Sprunner) -> dict[str, str]:
    return {
        name: entry.inflight.run_id
        for name, entry in recorded(sprunner).items()
        if entry.inflight is not None and entry.inflight.run_id is not None
    }


def polling(sprunner: Sprunner) -> bool:
    """Both runs started and recorded, and polled since."""
    recorded_ids = run_ids_recorded(sprunner)
    return len(recorded_ids) == 2 and sprunner.emulator.engine.calls["get_run"] >= 2


def runs_per_collection(emulator: EmulatorHandle) -> dict[str, list[str]]:
    engine = emulator.engine
    names = {c.id: c.name for c in list(engine.collections.values())}
    found: dict[str, list[str]] = {}
    for run in list(engine.runs.values()):
        found.setdefault(names.get(run.collection_id, "?"), []).append(run.run_id)
    return found


def assert_converged(
    sprunner: Sprunner, report: dict[str, Any], expected: dict[str, Any] = RENDERED
) -> None:
    """Each collection once, with exactly the rendered requests; each run once; report ok."""
    assert sprunner.remote() == {name: [requests] for name, requests in expected.items()}
    assert report["ok"] is True, report
    per_collection = runs_per_collection(sprunner.emulator)
    assert {name: len(ids) for name, ids in per_collection.items()} == dict.fromkeys(expected, 1)
    reported = {c["name"]: c["run"]["run_id"] for c in report["collections"]}
    assert reported == {name: ids[0] for name, ids in per_collection.items()}


def apply_again(sprunner: Sprunner, job: Path, *args: str) -> dict[str, Any]:
    """The apply after the interruption: in-process, without faults, and it must work."""
    sprunner.emulator.faults.clear()
    sprunner.emulator.engine.run_seconds = SHORT_RUN  # let left-over runs complete
    result, report = sprunner.apply(job, *args)
    assert result.exit_code == 0, result.output
    return report


def actions(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["action"] for c in report["collections"]}


def adopted(report: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {c["name"]: (c["run"]["run_id"], c["run"]["adopted"]) for c in report["collections"]}


# --- SIGKILL at chosen points -------------------------------------------------------------


def test_kill_mid_create_then_apply_converges(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    held = sprunner.emulator.faults.add("slow", 1.0, route="create", times=1)
    first = Apply(sprunner, job)
    first.wait_until(
        lambda: held.fired == 1 and len(recorded(sprunner)) == 1, "one create held, one done"
    )
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    # The server finishes the held create for a client that is gone: an id nobody recorded.
    wait_for(lambda: len(engine.collections) == 2, "the held create to take effect")
    assert len(recorded(sprunner)) == 1

    report = apply_again(sprunner, job)
    assert_converged(sprunner, report)
    assert engine.calls["create"] == 2  # the unrecorded one was found and PUT, not created
    assert sorted(actions(report).values()) == ["unchanged", "updated"]
    # The create was marked pending before it was sent: it is still sprunner's to prune.
    assert all(entry.created for entry in recorded(sprunner).values())


def test_kill_right_after_a_create_answered(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    # Hold one create, so that the kill lands after the other one is answered and recorded.
    held = sprunner.emulator.faults.add("slow", 1.0, route="create", times=1)
    first = Apply(sprunner, job)
    first.wait_until(lambda: bool(recorded(sprunner)), "an id in the journal")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    (name,) = recorded(sprunner)
    assert recorded(sprunner)[name].created is True
    wait_for(lambda: held.fired == 1 and len(engine.collections) == 2, "the held create")

    report = apply_again(sprunner, job)
    assert_converged(sprunner, report)
    assert engine.calls["create"] == 2
    assert actions(report)[name] == "unchanged"


def test_kill_mid_put_then_apply_puts_again(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, JOB.replace("range(3)", "range(1)"))
    assert sprunner.apply(job, "--no-run")[0].exit_code == 0
    write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    held = sprunner.emulator.faults.add("slow", 1.0, route="update", times=1)
    first = Apply(sprunner, job, "--no-run")
    first.wait_until(lambda: held.fired == 1, "the emulator received the held PUT")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    # The fingerprint was cleared before the PUT: the state does not claim what it cannot know.
    assert recorded(sprunner)["alpha"].fingerprint is None
    wait_for(lambda: sprunner.remote()["alpha"] == [RENDERED["alpha"]], "the held PUT")

    report = apply_again(sprunner, job)
    assert_converged(sprunner, report)
    assert actions(report) == {"alpha": "updated", "beta": "unchanged"}
    assert engine.calls["create"] == 2 and engine.calls["update"] == 2


@pytest.mark.parametrize("point", ["run recorded", "polling"])
def test_kill_with_runs_in_flight_then_they_are_adopted(
    sprunner: Sprunner, tmp_path: Path, point: str
) -> None:
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    engine.run_seconds = LONG_RUN
    first = Apply(sprunner, job)
    if point == "run recorded":
        first.wait_until(lambda: len(run_ids_recorded(sprunner)) == 2, "run ids in the journal")
    else:
        first.wait_until(lambda: polling(sprunner), "polls of the runs")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    in_flight = run_ids_recorded(sprunner)
    assert set(in_flight) == set(NAMES)

    report = apply_again(sprunner, job)
    assert_converged(sprunner, report)
    assert adopted(report) == {name: (run_id, True) for name, run_id in in_flight.items()}
    assert engine.calls["run"] == 2
    assert all(c["run"]["status"] == "completed" for c in report["collections"])
    assert run_ids_recorded(sprunner) == {}  # seen to their end: no longer in flight


def test_kill_between_run_post_and_answer_adopts_the_unrecorded_run(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    engine.run_seconds = LONG_RUN
    held = sprunner.emulator.faults.add("slow", 1.0, route="run")
    first = Apply(sprunner, job)
    first.wait_until(lambda: held.fired == 2, "the emulator received both held run starts")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    # A pending start: the POST was sent, its answer never recorded.
    pending = {name: entry.inflight for name, entry in recorded(sprunner).items()}
    assert all(record is not None and record.run_id is None for record in pending.values())
    wait_for(lambda: len(engine.runs) == 2, "the held run starts to take effect")

    report = apply_again(sprunner, job)
    assert_converged(sprunner, report)
    assert engine.calls["run"] == 2
    assert all(c["run"]["adopted"] for c in report["collections"])


def test_a_pending_start_is_not_carried_over_to_a_collection_created_again(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """A killed apply leaves a pending start on alpha; someone deletes alpha; a `--no-run`
    apply creates it again; someone runs the new alpha. The next apply runs alpha itself:
    the pending start was the old collection's, and the new one's newest run is not ours.
    (The state used to keep the old run records under the new id, so the stateful test
    found a run of a deleted collection expected to be adopted.)"""
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    engine.run_seconds = LONG_RUN
    held = sprunner.emulator.faults.add("slow", 1.0, route="run")
    first = Apply(sprunner, job)
    first.wait_until(lambda: held.fired == 2, "the emulator received both held run starts")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    wait_for(lambda: len(engine.runs) == 2, "the held run starts to take effect")
    old_alpha = recorded(sprunner)["alpha"].id
    engine.delete_collection(old_alpha)

    sprunner.emulator.faults.clear()
    result, report = sprunner.apply(job, "--no-run")
    assert result.exit_code == 0, result.output
    assert actions(report)["alpha"] == "created"
    new_alpha = recorded(sprunner)["alpha"]
    assert new_alpha.id != old_alpha
    engine.run_seconds = SHORT_RUN
    theirs = engine.start_run(new_alpha.id)["run_id"]
    # Completed, so that `overlap: skip` has no run in progress to adopt.
    wait_for(
        lambda: engine.get_run(new_alpha.id, theirs)["status"] == "completed", "their run's end"
    )

    report = apply_again(sprunner, job)
    assert len(runs_per_collection(sprunner.emulator)["alpha"]) == 2  # theirs, and ours
    alpha = {c["name"]: c["run"] for c in report["collections"]}["alpha"]
    assert alpha["run_id"] != theirs and alpha["adopted"] is False
    assert adopted(report)["beta"][1] is True  # beta's pending start is still resolved


# --- SIGINT / SIGTERM ---------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_polling_saves_state_and_a_partial_report(
    sprunner: Sprunner, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    engine.run_seconds = LONG_RUN
    first = Apply(sprunner, job)
    first.wait_until(lambda: polling(sprunner), "polls of the runs")
    assert first.stop(signum) == code, first.output
    assert "Traceback" not in first.output

    partial = check_report(first.report)
    assert partial["interrupted"] is True and partial["ok"] is False
    started = {run.collection_id: run.run_id for run in engine.runs.values()}
    for collection in partial["collections"]:
        assert collection["action"] == "created"
        run = collection["run"]
        assert run["status"] == "in_progress"
        assert run["run_id"] == started[collection["collection_id"]]
    in_flight = {c["name"]: c["run"]["run_id"] for c in partial["collections"]}
    # Compacted into the snapshot, with the in-flight records intact.
    assert not (sprunner.state_dir / "journal.jsonl").exists()
    assert run_ids_recorded(sprunner) == in_flight

    report = apply_again(sprunner, job)
    assert_converged(sprunner, report)
    assert adopted(report) == {name: (run_id, True) for name, run_id in in_flight.items()}
    assert engine.calls["run"] == 2


def test_sigterm_mid_create_writes_a_valid_partial_report(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    held = sprunner.emulator.faults.add("slow", 1.0, route="create", times=1)
    first = Apply(sprunner, job)
    first.wait_until(
        lambda: held.fired == 1 and len(recorded(sprunner)) == 1, "one create held, one done"
    )
    assert first.stop(signal.SIGTERM) == 143, first.output
    partial = check_report(first.report)
    assert partial["interrupted"] is True
    (done,) = recorded(sprunner)
    by_name = {c["name"]: c for c in partial["collections"]}
    assert by_name[done]["action"] == "created"
    # The done one's run may have started before the signal landed (each collection goes
    # on to its run at once): then the report shows it in flight, and the next apply
    # adopts it instead of starting another.
    run = by_name[done]["run"]
    assert run is None or run["status"] == "in_progress", run
    (cut,) = set(NAMES) - {done}
    assert "interrupted" in by_name[cut]["error"]
    wait_for(lambda: len(engine.collections) == 2, "the held create to take effect")

    report = apply_again(sprunner, job)
    assert_converged(sprunner, report)
    assert engine.calls["create"] == 2
    runs = Counter(r.collection_id for r in engine.runs.values())
    assert sorted(runs.values()) == [1, 1], runs  # one run each, never two


def test_signal_during_reconcile_lists_the_adopted_runs(sprunner: Sprunner, tmp_path: Path) -> None:
    """Runs adopted in the first phase are in flight too, while another create is held."""
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    engine.run_seconds = LONG_RUN
    first = Apply(sprunner, job)
    first.wait_until(lambda: len(run_ids_recorded(sprunner)) == 2, "run ids in the journal")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    in_flight = run_ids_recorded(sprunner)

    write_job(tmp_path, JOB + GAMMA_JOB)
    held = sprunner.emulator.faults.add("slow", 2.0, route="create", times=1)
    polled = engine.calls["get_run"]  # the killed apply may have polled already
    second = Apply(sprunner, job)
    second.wait_until(
        lambda: held.fired == 1 and engine.calls["get_run"] >= polled + 2,
        "runs adopted, gamma held",
    )
    wait_quiet(sprunner)  # the adopting apply has read the answers of its get_run calls
    assert second.stop(signal.SIGINT) == 130, second.output
    partial = check_report(second.report)
    runs = {c["name"]: c["run"] for c in partial["collections"]}
    for name, run_id in in_flight.items():
        assert (runs[name]["status"], runs[name]["run_id"]) == ("in_progress", run_id)
        assert runs[name]["adopted"] is True
    assert runs["gamma"] is None
    assert run_ids_recorded(sprunner) == in_flight
    wait_for(lambda: len(engine.collections) == 3, "the held create to take effect")

    report = apply_again(sprunner, job)
    assert_converged(sprunner, report, {**RENDERED, "gamma": [{"url": GAMMA}]})
    assert {name: adopted(report)[name] for name in in_flight} == {
        name: (run_id, True) for name, run_id in in_flight.items()
    }
    assert adopted(report)["gamma"][1] is False


def test_a_signal_after_the_work_still_gives_a_report_and_130(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Late signals (while the state is compacted) find sprunner's handler, not Python's."""
    import os

    from sprunner.state import State

    compact = State.compact

    def interrupted_compact(self: State) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        compact(self)

    monkeypatch.setattr(State, "compact", interrupted_compact)
    result, report = sprunner.apply(write_job(tmp_path, JOB), "--no-run")
    assert result.exit_code == 130, result.output
    assert report["interrupted"] is True
    assert actions(report) == {"alpha": "created", "beta": "created"}
    assert set(recorded(sprunner)) == set(NAMES)


class _HeldPing(http.server.BaseHTTPRequestHandler):
    """A ping endpoint that answers the start ping at once and holds the final one until
    `release` is set: while it is held, the apply is in its very last step."""

    final: threading.Event
    release: threading.Event

    def do_GET(self) -> None:
        from urllib.parse import urlsplit

        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not urlsplit(self.path).path.endswith("/start"):
            self.final.set()
            self.release.wait(10)
        self.send_response(200)
        self.end_headers()

    do_POST = do_GET  # the final ping carries the summary as its body

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_report_is_written_leaves_its_exit_code(
    sprunner: Sprunner, tmp_path: Path, signum: signal.Signals
) -> None:
    """The report is final once written: a signal that comes later (here while the final
    ping is sent) finds sprunner's handler and changes nothing, so the exit code is the one
    the report and the ping give. Python's defaults used to end it with 130 and a report
    saying 0 (SIGINT), or -15 (SIGTERM). Found by the stateful test under load."""
    handler = type(
        "Handler", (_HeldPing,), {"final": threading.Event(), "release": threading.Event()}
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/ping"
        late = Apply(sprunner, write_job(tmp_path, JOB), "--no-run", "--ping", url)
        late.wait_until(handler.final.is_set, "the final ping")
        late.process.send_signal(signum)
        handler.release.set()
        code = late.finish()
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
    assert code == 0, late.output
    assert "Traceback" not in late.output
    report = check_report(late.report)
    assert (report["exit_code"], report["ok"], report["interrupted"]) == (0, True, False)
    assert "exit code 0" in late.output


# --- the lock -----------------------------------------------------------------------------


def test_a_second_apply_exits_4_at_once_and_a_killed_one_leaves_no_lock(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, JOB)
    engine = sprunner.emulator.engine
    engine.run_seconds = LONG_RUN
    first = Apply(sprunner, job)
    first.wait_until(lambda: engine.calls["get_run"] >= 2, "the first apply to be polling")

    def writes() -> dict[str, int]:
        return {route: n for route, n in engine.calls.items() if route != "get_run"}

    calls_before = writes()

    began = time.monotonic()
    result = sprunner("apply", str(job))
    elapsed = time.monotonic() - began
    assert result.exit_code == 4, result.output
    assert "another sprunner apply holds the lock" in result.output
    assert elapsed < 0.5, f"the second apply took {elapsed:.2f}s to give up"

    # Another process, too, gives up at once (the interpreter's start-up dominates).
    second = Apply(sprunner, job)
    began = time.monotonic()
    assert second.finish() == 4, second.output
    assert time.monotonic() - began < 15.0  # generous: a loaded CI machine starts Python slowly
    assert writes() == calls_before  # neither sent a single call

    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    report = apply_again(sprunner, job)  # the kernel released the lock with the process
    assert_converged(sprunner, report)
