"""Issue #22, the seams of a collection's life (SPEC §10), each as it was found broken:

- an edit made while a killed apply's run was in flight is never lost ("a change is never
  lost"): the adopted run counts with the content it started with, not the current one;
- a create whose Idempotency-Key replays a collection deleted since is never taken for the
  collection (`apply --no-run` once said ok while it did not exist);
- `--prune` is scoped by the declaring file: folders applied apart never delete each
  other's collections, `plan` of one folder says nothing of the other's, and on a
  terminal an apply asks before deleting.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import Sprunner, write_job
from tests.e2e.subprocess_helpers import DEADLINE, Apply, recorded, wait_served


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.2) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path)


def job(page: int, *, when: str = "changed") -> str:
    return f"""
        version: 1
        collections:
          - name: shop
            requests:
              - url: https://shop.example/{page}
            run: {{when: {when}, poll_interval: 0.05s}}
        """


def runs_with(sprunner: Sprunner, page: int) -> int:
    url = f"https://shop.example/{page}"
    return sum(r.requests == [{"url": url}] for r in list(sprunner.emulator.engine.runs.values()))


def plan_of(sprunner: Sprunner, path: Path, *args: str) -> dict[str, Any]:
    result = sprunner("plan", str(path), "--json", *args)
    assert result.exit_code in (0, 10), result.output
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def test_an_edit_made_while_a_killed_apply_run_was_in_flight_is_never_lost(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    path = write_job(tmp_path, job(1))
    assert sprunner.apply(path)[0].exit_code == 0
    # Page 2 is applied and its run started; the apply is killed while it runs.
    write_job(tmp_path, job(2))
    sprunner.emulator.engine.run_seconds = 30.0
    killed = Apply(sprunner, path)
    killed.wait_until(lambda: runs_with(sprunner, 2) == 1, "the run of page 2 started")
    killed.wait_until(
        lambda: any(e.inflight and e.inflight.run_id for e in recorded(sprunner).values()),
        "its run id recorded",
    )
    killed.stop(signal.SIGKILL)
    wait_served(sprunner)
    sprunner.emulator.engine.run_seconds = 0.2
    # Page 3 is declared; the next apply PUTs it and adopts the run of page 2.
    write_job(tmp_path, job(3))
    result, report = sprunner.apply(path)
    assert result.exit_code == 0, result.output
    (shop,) = report["collections"]
    assert (shop["action"], shop["run"]["adopted"]) == ("updated", True)
    assert runs_with(sprunner, 3) == 0
    # That run ran page 2: page 3 is still pending, and plan says so.
    (planned,) = plan_of(sprunner, path)["collections"]
    assert planned["run"]["start"] is True, planned
    assert planned["run"]["reason"] == "changed since the last started run"
    assert (
        "run: starts now: changed since the last started run" in sprunner("plan", str(path)).stdout
    )
    result, report = sprunner.apply(path)
    assert result.exit_code == 0, result.output
    assert report["collections"][0]["run"]["adopted"] is False
    assert runs_with(sprunner, 3) == 1
    # Now it ran: nothing is pending any more.
    (planned,) = plan_of(sprunner, path)["collections"]
    assert planned["run"] == {
        "start": False,
        "reason": "run.when is changed and nothing changed",
        "credits": 0,
    }


def test_a_create_answered_with_an_older_deleted_collection_creates_it_again(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    """Content C is created, edited to D, the collection deleted and created again with D,
    edited back to C and deleted again: the next create's key (C, generation 0) replays
    the first collection, long deleted. `apply --no-run` must not take it as created."""
    engine = sprunner.emulator.engine
    path = write_job(tmp_path, job(1, when="always"))

    def apply_no_run() -> dict[str, Any]:
        result, report = sprunner.apply(path, "--no-run")
        assert result.exit_code == 0, result.output
        return report

    def delete_shop() -> None:
        for collection in [c for c in engine.collections.values() if c.name == "shop"]:
            engine.delete_collection(collection.id)

    apply_no_run()
    write_job(tmp_path, job(2, when="always"))
    apply_no_run()
    delete_shop()
    apply_no_run()  # created again with D: under C's key? no, D's
    write_job(tmp_path, job(1, when="always"))
    apply_no_run()  # PUT back to C
    delete_shop()
    report = apply_no_run()
    assert report["ok"] is True
    (shop,) = report["collections"]
    assert shop["action"] == "created"
    assert shop["collection_id"] in engine.collections, "reported created, but it does not exist"
    assert [c.requests for c in engine.collections.values() if c.name == "shop"] == [
        [{"url": "https://shop.example/1"}]
    ]


FOLDER_JOB = """
    version: 1
    collections:
      - name: {name}
        requests:
          - url: https://{name}.example/
        run: {{when: never}}
    """


def folders(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, names in ((a, ("a1", "a2")), (b, ("b1",))):
        folder.mkdir()
        for name in names:
            write_job(folder, FOLDER_JOB.format(name=name), f"{name}.yaml")
    return a, b


def remote_names(sprunner: Sprunner) -> list[str]:
    return sorted(c.name for c in sprunner.emulator.engine.collections.values())


def test_folders_applied_apart_never_prune_what_the_other_declares(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # paths as a user types them: relative
    a, _ = folders(tmp_path)
    for folder in ("a", "b"):
        assert sprunner("apply", folder).exit_code == 0
    assert remote_names(sprunner) == ["a1", "a2", "b1"]
    # Each folder's plan says nothing about the other's collections.
    for folder, own in (("a", {"a1", "a2"}), ("b", {"b1"})):
        for args in ((), ("--prune",)):
            planned = plan_of(sprunner, Path(folder), *args)
            assert {c["name"] for c in planned["collections"]} == own, planned
            assert planned["summary"]["delete"] == 0
    for folder in ("a", "b"):
        result = sprunner("apply", folder, "--prune")
        assert result.exit_code == 0, result.output
    assert remote_names(sprunner) == ["a1", "a2", "b1"]
    # A file removed from a/ counts: its collection goes, and only with a/'s prune.
    (a / "a2.yaml").unlink()
    assert sprunner("apply", "b", "--prune").exit_code == 0
    assert remote_names(sprunner) == ["a1", "a2", "b1"]
    planned = plan_of(sprunner, Path("a"))
    assert [(c["name"], c["action"]) for c in planned["collections"]] == [
        ("a1", "unchanged"),
        ("a2", "delete"),
    ]
    result = sprunner("apply", "a", "--prune")
    assert result.exit_code == 0, result.output
    assert remote_names(sprunner) == ["a1", "b1"]


def _in_a_terminal(sprunner: Sprunner, cwd: Path, answer: str | None, *args: str) -> str:
    """`sprunner apply ARGS` on a pseudo-terminal, answering `answer` to its question."""
    master, slave = os.openpty()
    env = {**os.environ, "SCRAPINGPROS_API_KEY": sprunner.emulator.api_key, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "sprunner", "--api-url", sprunner.emulator.url]
    process = subprocess.Popen(
        [*command, "--state-dir", str(sprunner.state_dir), "apply", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            if answer is not None and b"Delete them? [y/N]" in seen:
                os.write(master, answer.encode() + b"\n")
                answer = None
            if not select.select([master], [], [], 0.1)[0]:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its side
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=DEADLINE) == 0, seen.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return seen.decode(errors="replace")


def test_on_a_terminal_an_apply_that_would_delete_asks_first(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a, _ = folders(tmp_path)
    assert sprunner("apply", str(a)).exit_code == 0
    (a / "a2.yaml").unlink()
    said = _in_a_terminal(sprunner, tmp_path, "n", "a", "--prune")
    assert "--prune would delete 1 collections: a2" in said, said
    assert "nothing deleted: the 1 deletions were declined" in said, said
    assert remote_names(sprunner) == ["a1", "a2"]
    said = _in_a_terminal(sprunner, tmp_path, "y", "a", "--prune")
    assert remote_names(sprunner) == ["a1"]
    write_job(a, FOLDER_JOB.format(name="a2"), "a2.yaml")
    assert sprunner("apply", str(a)).exit_code == 0
    (a / "a2.yaml").unlink()
    said = _in_a_terminal(sprunner, tmp_path, None, "a", "--prune", "--yes")
    assert "Delete them?" not in said and remote_names(sprunner) == ["a1"]
    # Not on a terminal, --prune is the consent (CliRunner: no terminal).
    write_job(a, FOLDER_JOB.format(name="a2"), "a2.yaml")
    assert sprunner("apply", str(a)).exit_code == 0
    (a / "a2.yaml").unlink()
    assert sprunner("apply", str(a), "--prune").exit_code == 0
    assert remote_names(sprunner) == ["a1"]


def test_a_collection_recorded_without_its_file_is_never_pruned(
    sprunner: Sprunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state of an older sprunner knows no declaring file: no prune reaches it (SPEC §4:
    applying a subset never deletes what other files declare), until an apply of the
    folder that declares it records its file."""
    from sprunner.state import State

    monkeypatch.chdir(tmp_path)
    a, _ = folders(tmp_path)
    assert sprunner("apply", str(a)).exit_code == 0
    state = State(sprunner.state_dir, sprunner.emulator.url)
    for name in ("a1", "a2"):
        state.update(name, file=None)
    state.close()
    (a / "a2.yaml").unlink()
    assert sprunner("apply", str(a), "--prune").exit_code == 0
    assert remote_names(sprunner) == ["a1", "a2"]
    planned = plan_of(sprunner, tmp_path, "--prune")
    assert all(c["action"] != "delete" for c in planned["collections"]), planned
