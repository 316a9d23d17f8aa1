"""The state through the CLI: clear errors for unusable state locations, and export /
import between a directory and a real PostgreSQL database with no PUT afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from sprunner.emulator.server import EmulatorHandle, running_emulator
from sprunner.errors import EXIT_INVALID
from tests.e2e.apply_helpers import Sprunner, check_report, write_job

TOKEN = "q7"  # a short secret: exactly what unkeyed digests gave away
JOB = """
version: 1
collections:
  - name: shop
    requests:
      - url: https://shop.example.com/
        headers: {X-Token: "{{ env('SHOP_TOKEN') }}"}
  - name: blog
    requests:
      - url: https://blog.example.com/
"""


@pytest.fixture
def sprunner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sprunner]:
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)
    with running_emulator(mode="simulate", run_seconds=0.3) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path)


def cli(emulator: EmulatorHandle, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m sprunner` as a user runs it, to see exactly what reaches the terminal."""
    env = {
        **os.environ,
        "SCRAPINGPROS_API_KEY": emulator.api_key,
        "SHOP_TOKEN": TOKEN,
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    command = [sys.executable, "-m", "sprunner", "--api-url", emulator.url, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def apply_with(sprunner: Sprunner, job: Path, *state: str) -> tuple[Result, dict[str, Any]]:
    """`apply --no-run` with other global state options (they go before the command)."""
    report = sprunner.workdir / "report.json"
    report.unlink(missing_ok=True)
    result = sprunner(*state, "apply", str(job), "--no-run", "--report", str(report))
    return result, check_report(report)


def test_export_and_import_through_a_database_keep_fingerprints_so_no_put_follows(
    sprunner: Sprunner, tmp_path: Path, state_db: str
) -> None:
    job = write_job(tmp_path, JOB)
    assert sprunner.apply(job, "--no-run")[0].exit_code == 0
    exported = tmp_path / "from-dir.json"
    result = sprunner("state", "export", "--to", str(exported))
    assert result.exit_code == 0, result.output
    text = exported.read_text()
    assert TOKEN not in text and sprunner.emulator.api_key not in text

    result = sprunner("--state-url", state_db, "state", "import", str(exported))
    assert result.exit_code == 0, result.output
    result = sprunner("--state-url", state_db, "state", "export")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(text)  # the database holds it all

    sprunner.reset_calls()
    result, report = apply_with(sprunner, job, "--state-url", state_db)
    assert result.exit_code == 0, result.output
    assert [c["action"] for c in report["collections"]] == ["unchanged", "unchanged"]
    assert sprunner.calls() == {"list": 1}
    planned = sprunner("--state-url", state_db, "plan", str(job), "--json")
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["summary"]["unchanged"] == 2

    other = tmp_path / "other-state"
    back = tmp_path / "from-db.json"
    assert sprunner("--state-url", state_db, "state", "export", "--to", str(back)).exit_code == 0
    assert sprunner("--state-dir", str(other), "state", "import", str(back)).exit_code == 0
    sprunner.reset_calls()
    result, report = apply_with(sprunner, job, "--state-dir", str(other))
    assert result.exit_code == 0, result.output
    assert [c["action"] for c in report["collections"]] == ["unchanged", "unchanged"]
    assert sprunner.calls() == {"list": 1}


def test_an_import_that_is_not_an_export_is_refused_whole(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "sprunner-state", "version": 1, "apis": {"u": []}}))
    result = sprunner("state", "import", str(bad))
    assert result.exit_code == 2
    assert "bad.json: apis['u']: expected an object" in result.output
    assert not (sprunner.state_dir / "journal.jsonl").exists()


def test_a_state_url_that_is_not_postgresql_is_a_usage_error(sprunner: Sprunner) -> None:
    result = sprunner("--state-url", "mysql://x/y", "state", "export")
    assert result.exit_code == 2
    assert "--state-url must start with postgresql://" in result.output


def test_without_the_postgres_extra_the_error_names_it(sprunner: Sprunner, tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.argv[0] = 'sprunner'; "
        "from sprunner.cli import main; sys.exit(main())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["--state-url", "postgresql://127.0.0.1:1/x", "state", "export"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'sprunner[postgres]'" in done.stderr
    assert "Traceback" not in done.stderr


def _lock_is_a_directory(state: Path) -> Path:
    (state / "lock").mkdir(parents=True)
    return state


def _under_a_regular_file(state: Path) -> Path:
    state.write_text("not a directory\n")
    return state / "inner"


@pytest.mark.parametrize("make", [_lock_is_a_directory, _under_a_regular_file])
def test_an_unusable_state_directory_is_a_clear_error_not_a_traceback(
    sprunner: Sprunner, tmp_path: Path, make: object
) -> None:
    job = write_job(tmp_path, JOB)
    state = make(tmp_path / "state")  # type: ignore[operator]
    done = cli(sprunner.emulator, "--state-dir", str(state), "apply", str(job), cwd=tmp_path)
    assert done.returncode == EXIT_INVALID, done.stderr  # nothing done: like a usage error
    assert "Traceback" not in done.stderr
    assert "error: cannot " in done.stderr and str(state) in done.stderr
    assert sprunner.remote() == {}  # nothing was sent: the state could not be kept


@pytest.fixture
def read_only_state(tmp_path: Path) -> Iterator[Path]:
    """A state directory on a read-only bind mount (root ignores mode bits)."""
    state = tmp_path / "ro-state"
    state.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(state), str(state)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode(errors='replace')}")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(state)]
        if subprocess.run(remount, capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield state
    finally:
        subprocess.run(["umount", str(state)], capture_output=True)


def test_a_read_only_state_directory_is_a_clear_error_for_apply_and_fine_for_plan(
    sprunner: Sprunner, tmp_path: Path, read_only_state: Path
) -> None:
    job = write_job(tmp_path, JOB)
    state = str(read_only_state)
    done = cli(sprunner.emulator, "--state-dir", state, "apply", str(job), cwd=tmp_path)
    assert done.returncode == EXIT_INVALID, done.stderr  # nothing done: like a usage error
    assert "Traceback" not in done.stderr
    assert "cannot lock the state directory" in done.stderr and "Read-only" in done.stderr
    planned = cli(sprunner.emulator, "--state-dir", state, "plan", str(job), cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
