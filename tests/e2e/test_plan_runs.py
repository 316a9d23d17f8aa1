"""`plan` says what `apply` would run, and apply then does exactly that; the CLI's small
promises (options after the command, one message per problem, `--select` completion)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES, Sprunner, write_job

MIXED = """
version: 1
collections:
  - name: always
    requests: [{url: "https://a.example/1"}, {url: "https://a.example/2", browser: true}]
    run: {poll_interval: 0.1s}
  - name: on-change
    requests: [{url: "https://b.example/1"}]
    run: {when: changed, poll_interval: 0.1s}
  - name: hourly
    tags: [slow]
    requests: [{url: "https://c.example/1"}]
    run: {schedule: "0 * * * *", poll_interval: 0.1s}
  - name: never
    requests: [{url: "https://d.example/1"}]
    run: {when: never}
  - name: busy
    requests: [{url: "https://e.example/1"}, {url: "https://e.example/2"}]
    run: {overlap: skip, poll_interval: 0.1s}
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.3) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path, QUICK_RETRIES)


def _plan(sprunner: Sprunner, job: Path, *args: str) -> dict[str, dict[str, object]]:
    result = sprunner("plan", str(job), "--json", *args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    return document  # type: ignore[no-any-return]


def test_plan_says_which_runs_start_and_apply_starts_exactly_those(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, MIXED)
    first = _plan(sprunner, job)
    starts = {c["name"]: c["run"]["start"] for c in first["collections"]}  # type: ignore[index]
    assert starts == {
        "always": True,
        "on-change": True,
        "hourly": True,
        "never": False,
        "busy": True,
    }
    assert first["run_credits"] == 6 + 1 + 1 + 2
    sprunner.apply(job)

    # Someone else starts a run of `busy`; it is in progress while we plan and apply.
    sprunner.emulator.engine.run_seconds = 3.0
    (busy,) = [c for c in sprunner.emulator.engine.collections.values() if c.name == "busy"]
    other = sprunner.emulator.engine.start_run(busy.id)
    plan = _plan(sprunner, job)
    runs = {c["name"]: c["run"] for c in plan["collections"]}  # type: ignore[index]
    assert runs["always"] == {"start": True, "reason": None, "credits": 6}
    assert runs["on-change"]["start"] is False and "changed" in runs["on-change"]["reason"]
    assert runs["hourly"]["start"] is False and "not due" in runs["hourly"]["reason"]
    assert runs["never"] == {"start": False, "reason": "run.when is never", "credits": 0}
    assert runs["busy"]["start"] is False and other["run_id"] in runs["busy"]["reason"]
    assert plan["run_credits"] == 6

    sprunner.reset_calls()
    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.stderr
    started = {
        c["name"]
        for c in report["collections"]
        if c["run"] and c["run"]["run_id"] and not c["run"]["adopted"]
    }
    assert started == {name for name, run in runs.items() if run["start"]}
    assert sprunner.calls()["run"] == 1
    # Every request succeeds here: the started run is charged what plan said it costs at
    # most; the adopted run of `busy`, seen to its end here, is charged too (2 requests).
    ran = {c["name"]: c["run"]["credits"] for c in report["collections"] if c["run"]}
    assert ran["always"] == plan["run_credits"] and ran["busy"] == 2
    assert report["summary"]["credits"] == plan["run_credits"] + 2


def test_plan_text_cost_line_quiet_and_unmanaged(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, MIXED)
    sprunner.apply(job)
    sprunner.emulator.engine.create_collection(
        {"name": "hand-made", "requests": [{"url": "https://x.example/"}]}
    )
    result = sprunner("plan", str(job))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "run: starts now (at most 6 credits)" in out
    assert "run: none (run.when is never)" in out
    assert "Runs: 2 would start now, costing at most 8 credits." in out  # always + busy
    assert "1 unmanaged collection in the account (never touched; -v lists them)." in out
    assert "hand-made" not in out
    assert "hand-made" in sprunner("plan", str(job), "-v").stdout
    quiet = sprunner("plan", str(job), "-q")
    assert quiet.exit_code == 0 and quiet.stdout == ""


def test_a_file_with_only_a_name_gets_each_message_once(tmp_path: Path) -> None:
    job = write_job(tmp_path, "name: x\n")
    done = subprocess.run(
        [sys.executable, "-m", "sprunner", "validate", str(job)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    lines = [line.removeprefix("error: ") for line in done.stderr.splitlines()]
    assert len(lines) == len(set(lines)) == 3, lines


def test_select_completes_names_and_tags_from_the_job_files(tmp_path: Path) -> None:
    (tmp_path / "jobfiles").mkdir()
    write_job(tmp_path / "jobfiles", MIXED)
    write_job(tmp_path / "jobfiles", "version: [broken", name="broken.yaml")

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_SPRUNNER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        done = subprocess.run(
            [sys.executable, "-c", "from sprunner.cli import main; main()"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
            timeout=30,
        )
        assert done.returncode == 0 and done.stderr == ""
        return [line.partition(",")[2] for line in done.stdout.splitlines() if line]

    assert complete("sprunner apply --select a") == ["always"]
    assert complete("sprunner plan -s tag:") == ["tag:slow"]
    assert "busy" in complete("sprunner apply --select ")
    (tmp_path / "empty").mkdir()
    assert complete("sprunner apply empty --select a") == []  # the paths given, not jobfiles/


def test_plan_prune_shows_the_deletions_as_changes(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, MIXED)
    sprunner("apply", str(job), "--no-run")
    write_job(tmp_path, MIXED.split("  - name: never")[0])
    plain = sprunner("plan", str(job), "--detailed-exitcode")
    assert plain.exit_code == 0 and "delete with --prune" in plain.stdout
    pruned = sprunner("plan", str(job), "--prune", "--detailed-exitcode")
    assert pruned.exit_code == 10, pruned.stderr
    assert "- never" in pruned.stdout and "busy" in pruned.stdout
    assert "2 to delete" in pruned.stdout
    assert "delete with --prune" not in pruned.stdout
    assert "never" in sprunner.remote()  # plan only shows: nothing is deleted
