"""Applies under injected faults, over many seeds: nothing doubled, nothing lost (SPEC §4).

Each seed switches on one combination of the emulator's faults (5xx before and after the
work, connections dropped after the work, 429s, slow answers, a token-bucket rate limit),
once with the `Idempotency-Key` honoured and once with it ignored (`no-idempotency`, like an
old deployment). Every apply is then held to the promises, whatever the faults did:

- every desired collection exists exactly once remotely, holding exactly the rendered
  requests (once the apply that created or updated it succeeded for that collection);
- no collection got two runs started by one apply;
- the report lists every failed and timed-out job of every completed run;
- the exit code is 0 when every collection is ok and 1 otherwise, never 3: transient
  faults cost retries, not the apply. (The one exception SPEC §3 makes: when every retry
  of the very first call fails, the API is unusable and nothing else is sent; the helper
  checks exactly that and applies again.)

A fault may outlast every retry; then that collection carries an error (exit 1) and the
next apply must still converge without a duplicate. The last apply of each seed runs with
the faults switched off and must leave the remote side exactly as desired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from sprunner.emulator.server import EmulatorHandle, running_emulator
from sprunner.jobfile.load import load
from sprunner.settings import Selection
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, check_report, write_job

# Kept small: 16 seeds x 3 applies must stay well under a minute on two cores.
JOBS = """
version: 1
collections:
  - name: plain
    requests:
      - url: "https://shop.example.com/p/{{ n }}"
        foreach:
          n: "{{ range(PLAIN) }}"
    run: {poll_interval: 0.1s, timeout: 20s}
  - name: tolerant
    requests:
      - url: https://blog.example.com/
      - url: https://blog.example.com/fail/1
      - url: https://blog.example.com/timeout/1
    run: {poll_interval: 0.1s, timeout: 20s, max_failed: 2}
  - name: browser
    requests:
      - url: https://app.example.com/a
        browser: true
      - url: https://app.example.com/b
        browser: true
        custom_id: b
    run: {poll_interval: 0.1s, timeout: 20s}
"""
STRICT = """
  - name: strict
    requests:
      - url: https://news.example.com/
      - url: https://news.example.com/fail
    run: {poll_interval: 0.1s, timeout: 20s}
"""

# Probabilities are per call. They are high enough that most applies meet several faults,
# and low enough that the client's retries almost always get through.
COMBOS: tuple[tuple[str, ...], ...] = (
    ("error-before:0.25", "error-after:0.25"),
    ("drop-after:0.3", "slow:0.02"),
    ("error-after:0.5@create", "drop-after:0.5@run"),
    ("drop-after:0.5@create", "error-after:0.5@run", "error-after:0.3@update"),
    ("rate-429:0.05", "error-before:0.2", "drop-after:0.2"),
    ("rate-limit:12", "error-after:0.2"),
    ("error-before:0.2", "error-after:0.2", "drop-after:0.2", "slow:0.01"),
    ("drop-after:0.4@get_run", "error-before:0.3@list_runs", "error-after:0.4@run"),
)
SEEDS = range(2 * len(COMBOS))  # each combination with and without idempotency


def faults_for(seed: int) -> list[str]:
    faults = list(COMBOS[seed % len(COMBOS)])
    if (seed // len(COMBOS)) % 2:
        faults.append("no-idempotency")
    return faults


def job_text(*, plain: int, strict: bool) -> str:
    return JOBS.replace("PLAIN", str(plain)) + (STRICT if strict else "")


def check_apply(
    sprunner: Sprunner,
    job: Path,
    result: Result,
    report: dict[str, Any],
    runs_before: Counter[str],
    *,
    ran: bool,
) -> None:
    """The promises of one apply, whatever the faults did."""
    output = result.output
    assert "Traceback" not in output
    assert result.exit_code in (0, 1), output  # transient faults never give 3
    loaded = load(Selection(paths=(job,)))
    desired = {c.name: c for c in loaded.collections}
    engine = sprunner.emulator.engine
    remote = sprunner.remote()
    by_name = {c["name"]: c for c in report["collections"]}
    assert set(by_name) == set(desired)

    # Never a duplicate, even when a collection failed for good.
    for name in desired:
        assert len(remote.get(name, [])) <= 1, f"{name}: {len(remote[name])} remote copies"

    # No collection got two runs started by this apply.
    runs_after = Counter(run.collection_id for run in engine.runs.values())
    names = {c.id: c.name for c in engine.collections.values()}
    for collection_id, count in runs_after.items():
        started = count - runs_before[collection_id]
        assert started <= 1, f"{names.get(collection_id)}: {started} runs started by one apply"

    all_ok = True
    for name, want in desired.items():
        got = by_name[name]
        if got["action"] == "error" or got.get("error"):
            # A fault outlasted the retries: said clearly, for that collection only.
            assert got["ok"] is False and got["error"], got
            all_ok = False
            continue
        assert remote[name] == [list(want.requests)], f"{name}: remote content differs"
        stored = next(c for c in engine.collections.values() if c.name == name)
        assert got["collection_id"] == stored.id
        run = got["run"]
        if not ran:
            # Not run here: judged by its latest verdict (SPEC §9), which names a run of
            # this collection whose bad jobs against max_failed say the same.
            assert run is None
            verdict = got.get("verdict")
            if verdict is not None:
                assert engine.runs[verdict["run_id"]].collection_id == stored.id
                bad = verdict["failed_requests"] + verdict["timeout_requests"]
                assert verdict["ok"] is want.run.max_failed.allows(bad, len(want.requests))
            within = verdict is None or verdict["ok"]
            assert got["ok"] is within
            all_ok = all_ok and within
            continue
        assert run is not None and run["status"] == "completed", got
        assert engine.runs[run["run_id"]].collection_id == stored.id
        bad_urls = {r["url"] for r in want.requests if "fail" in r["url"] or "timeout" in r["url"]}
        assert {j["url"] for j in run["failed_jobs"]} == bad_urls
        for job_ in run["failed_jobs"]:
            assert job_["status"] == ("timeout" if "timeout" in job_["url"] else "failed")
        assert run["failed_requests"] + run["timeout_requests"] == len(bad_urls)
        assert run["total_requests"] == len(want.requests)
        within = want.run.max_failed.allows(len(bad_urls), len(want.requests))
        assert got["ok"] is within
        all_ok = all_ok and within
    assert report["ok"] is all_ok
    assert result.exit_code == (0 if all_ok else 1), output


def apply_and_check(sprunner: Sprunner, job: Path, *args: str, ran: bool = True) -> dict[str, Any]:
    engine = sprunner.emulator.engine
    report_path = sprunner.workdir / "report.json"
    for _ in range(3):
        report_path.unlink(missing_ok=True)
        runs_before = Counter(run.collection_id for run in engine.runs.values())
        calls_before = Counter(engine.calls)
        result = sprunner("apply", str(job), "--report", str(report_path), "--parallel", "4", *args)
        calls = Counter(engine.calls) - calls_before
        if result.exit_code == 3 and set(calls) == {"list"}:
            # Every retry of the very first call failed: by SPEC §3 the API is unusable (exit
            # 3) and nothing else was sent. Rare by design; once the API has answered, no
            # transient fault may give 3. Try the apply again.
            assert calls["list"] >= 6 and "list collections" in result.output, result.output
            continue
        break
    assert report_path.exists(), result.output
    report = check_report(report_path)
    check_apply(sprunner, job, result, report, runs_before, ran=ran)
    return report


def converged(sprunner: Sprunner, job: Path) -> None:
    """With the faults off, one more apply leaves every collection exactly as desired."""
    sprunner.emulator.faults.clear()
    report = apply_and_check(sprunner, job, "--no-run", ran=False)
    # Nothing in error; a collection is not ok only by its last run's verdict (a strict one
    # over max_failed: health never forgets, SPEC §9).
    for collection in report["collections"]:
        assert "error" not in collection, collection
        assert collection["ok"] or collection["verdict"]["ok"] is False, collection
    desired = load(Selection(paths=(job,))).collections
    remote = sprunner.remote()
    assert {c.name: remote.get(c.name) for c in desired} == {
        c.name: [list(c.requests)] for c in desired
    }


@pytest.fixture
def emulator_for_seed(request: pytest.FixtureRequest) -> Iterator[tuple[int, EmulatorHandle]]:
    seed: int = request.param
    faults = faults_for(seed)
    with running_emulator(mode="simulate", run_seconds=0.2, faults=faults, seed=seed) as handle:
        yield seed, handle


@pytest.mark.parametrize("emulator_for_seed", SEEDS, indirect=True, ids=lambda s: f"seed{s}")
def test_faults_never_duplicate_nor_double_run(
    emulator_for_seed: tuple[int, EmulatorHandle], tmp_path: Path
) -> None:
    seed, emulator = emulator_for_seed
    sprunner = Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)
    strict = seed % 4 in (0, 3)  # half the seeds also hold a collection over its max_failed

    # 1. create and run everything, under faults
    job = write_job(tmp_path, job_text(plain=3, strict=strict))
    apply_and_check(sprunner, job)

    # 2. edit: one collection grows, one is unchanged; update and run again, under faults
    job = write_job(tmp_path, job_text(plain=5, strict=not strict))
    apply_and_check(sprunner, job)

    # 3. faults off: the remote side is exactly the desired side
    converged(sprunner, job)
