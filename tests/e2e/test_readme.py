"""Every command the README shows is run here, and what the README says it prints is what
it prints (issue 24): the tutorial with `--local`, the lines for the real API against the
emulator, the shell completions, and the captures of "Operating it unattended" (on a
pseudo-terminal where they were taken on one). Times and ids are compared as such, not
by value. A command added to the README, or changed, fails the first test until a test
here runs it."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.terminal import run_in_pty, screen
from sprunner.emulator.server import EmulatorHandle, running_emulator
from sprunner.output.logfmt import EVENTS
from tests.readme import (
    DEMO_URL,
    README,
    ROOT,
    Block,
    blocks,
    normalized,
    run_lines,
    shim,
    sprunner_commands,
)

TUTORIAL = "test_the_tutorial_prints_what_it_shows"
REAL_API = "test_the_real_api_lines_do_what_their_comments_say"
OPERATING = "test_the_operating_captures_are_what_sprunner_prints"
KNOWN = {
    "pip install . && sprunner apply examples/jobs --local --report report.json": (
        "test_the_first_line_runs_the_demo"
    ),
    "sprunner validate examples/jobs": TUTORIAL,
    "sprunner render examples/jobs --select shop-categories | head -3": TUTORIAL,
    "sprunner plan examples/jobs --local 2>/dev/null | tail -2": TUTORIAL,
    "sprunner apply examples/jobs --local --report report.json --junit junit.xml 2>/dev/null": (
        TUTORIAL
    ),
    "sprunner plan examples/jobs --local --select shop-categories 2>/dev/null": TUTORIAL,
    "sprunner apply examples/jobs --local --select shop-categories 2>&1"
    " | grep -E ': updated|charged'": TUTORIAL,
    "sprunner plan examples/jobs --local --select shop-categories --detailed-exitcode"
    " 2>/dev/null | tail -1": TUTORIAL,
    "sprunner plan examples/jobs              # read-only: what would change, which runs"
    " would start": REAL_API,
    "sprunner apply examples/jobs --report report.json": REAL_API,
    "sprunner apply examples/jobs --no-run    # reconcile only: the hundredth run makes one"
    " call": REAL_API,
    'eval "$(_SPRUNNER_COMPLETE=bash_source sprunner)"': "test_shell_completions",
    'eval "$(_SPRUNNER_COMPLETE=zsh_source sprunner)"': "test_shell_completions",
    "_SPRUNNER_COMPLETE=fish_source sprunner > ~/.config/fish/completions/sprunner.fish": (
        "test_shell_completions"
    ),
    f"sprunner --api-url {DEMO_URL} apply jobs --report report.json": OPERATING,
    f"sprunner --api-url {DEMO_URL} apply jobs --no-run 2>/dev/null": OPERATING,
    f"sprunner --api-url {DEMO_URL} status jobs --runs 5": OPERATING,
    f"sprunner --api-url {DEMO_URL} apply jobs --select news-archive --run-now"
    " --progress-every 2": OPERATING,
    "set +e; sprunner plan --detailed-exitcode; code=$?; set -e": (
        "test_the_ci_gate_reads_sprunners_codes"
    ),
}


def test_every_readme_command_is_run_by_a_test_here() -> None:
    found = sprunner_commands()
    unknown = sorted(found - set(KNOWN))
    gone = sorted(set(KNOWN) - found)
    assert not unknown, f"README commands no test runs (add them to KNOWN): {unknown}"
    assert not gone, f"commands KNOWN here that the README no longer shows: {gone}"


def _blocks_running(*commands: str) -> list[Block]:
    found = [b for b in blocks() if any(c in b.text for c in commands)]
    assert found, commands
    return found


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    return text[start : text.index("\n## ", start + 1)]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the examples (the tutorial edits them), and an environment with this
    tree's `sprunner` on the PATH and no API key."""
    shutil.copytree(ROOT / "examples" / "jobs", tmp_path / "examples" / "jobs")
    yield tmp_path, shim(tmp_path / "bin")


def _check_console(block: Block, outputs: list[str]) -> None:
    for (command, shown), printed in zip(block.console, outputs, strict=True):
        got = [normalized(line) for line in printed.splitlines()]
        assert got == [normalized(line) for line in shown], (block.line, command, printed)


def test_the_first_line_runs_the_demo(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    [block] = _blocks_running("pip install . && sprunner apply")
    line = next(x for x in block.text.splitlines() if "sprunner apply" in x)
    command = line.split("&&", 1)[1].strip()
    [printed] = run_lines([command + "; echo exit code $?"], cwd=cwd, env=env)
    # "it ends with exit code 1 and lists the failed jobs", and writes report.json.
    assert printed.splitlines()[-1] == "exit code 1"
    assert "FAILED partner-feeds" in printed and (cwd / "report.json").is_file()


def test_the_tutorial_prints_what_it_shows(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    tutorial = [b for b in blocks() if b.lang == "console" and "examples/jobs" in b.text]
    assert len(tutorial) == 2
    for block in tutorial:  # in order: the second plans the edit the first one's files
        _check_console(block, run_lines([c for c, _ in block.console], cwd=cwd, env=env))
    # "exits 10 when changes are pending (0 when there are none)"
    [printed] = run_lines(
        ["sprunner plan examples/jobs --local --detailed-exitcode >/dev/null 2>&1; echo $?"],
        cwd=cwd,
        env=env,
    )
    assert printed == "0\n"


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    with running_emulator(mode="simulate", run_seconds=1.0) as handle:
        yield handle


def test_the_real_api_lines_do_what_their_comments_say(
    workdir: tuple[Path, dict[str, str]], emulator: EmulatorHandle
) -> None:
    cwd, env = workdir
    [block] = _blocks_running("export SCRAPINGPROS_API_KEY=")
    lines = block.text.splitlines()
    assert lines[0].startswith("export SCRAPINGPROS_API_KEY=...")
    env = {**env, "SCRAPINGPROS_API_KEY": emulator.api_key, "SCRAPINGPROS_API_URL": emulator.url}
    commands = [f"{line.split('#')[0].strip()}; echo exit code $?" for line in lines[1:]]
    plan, applied = run_lines(commands[:2], cwd=cwd, env=env)
    assert "Runs: 4 would start now" in plan and plan.endswith("exit code 0\n")
    assert "Apply complete: 4 created" in applied and applied.endswith("exit code 1\n")
    assert (cwd / "report.json").is_file()
    # "reconcile only: the hundredth run makes one call"
    emulator.engine.calls.clear()
    [no_run] = run_lines(commands[2:], cwd=cwd, env=env)
    assert dict(emulator.engine.calls) == {"list": 1}
    # Exit 1: partner-feeds's last run failed, and health never forgets.
    assert no_run.endswith("exit code 1\n") and "FAILED partner-feeds: last run" in no_run


def test_the_ci_gate_reads_sprunners_codes(
    workdir: tuple[Path, dict[str, str]], emulator: EmulatorHandle
) -> None:
    """The gate passes with "changes pending" (10) or "no changes" (0) and fails with the
    code of anything else (2: invalid job files)."""
    import subprocess

    cwd, env = workdir
    [block] = _blocks_running("set +e; sprunner plan --detailed-exitcode")
    env = {**env, "SCRAPINGPROS_API_KEY": emulator.api_key, "SCRAPINGPROS_API_URL": emulator.url}
    shutil.copytree(cwd / "examples" / "jobs", cwd / "jobfiles")  # plan's default path

    def gate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", "set -e\n" + block.text],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    pending = gate()  # the plan's table, then the gate's word
    assert pending.returncode == 0, pending.stderr
    assert pending.stdout.splitlines()[-1] == "changes pending: apply them, or ask for a review"
    run_lines(["sprunner apply --no-run"], cwd=cwd, env=env)
    clean = gate()
    assert (clean.returncode, clean.stdout.splitlines()[-1]) == (0, "no changes")
    (cwd / "jobfiles" / "broken.yaml").write_text("name: not a job file\n")
    assert gate().returncode == 2


def test_shell_completions(tmp_path: Path) -> None:
    env = {**shim(tmp_path / "bin"), "HOME": str(tmp_path)}
    (tmp_path / ".config" / "fish" / "completions").mkdir(parents=True)
    lines = [line for b in _blocks_running("_SPRUNNER_COMPLETE") for line in b.text.splitlines()]
    bash, zsh, fish = (
        next(x for x in lines if f"={s}_source" in x) for s in ("bash", "zsh", "fish")
    )
    [loaded] = run_lines([f"{bash}; complete -p sprunner"], cwd=tmp_path, env=env)
    assert "complete" in loaded and loaded.rstrip().endswith("sprunner")
    zsh_command = zsh.removeprefix('eval "$(').removesuffix(')"')
    [zsh_source] = run_lines([zsh_command], cwd=tmp_path, env=env)
    assert zsh_source.startswith("#compdef sprunner")
    run_lines([fish], cwd=tmp_path, env=env)
    written = (tmp_path / ".config" / "fish" / "completions" / "sprunner.fish").read_text()
    assert "complete --no-files --command sprunner" in written


# --- "Operating it unattended" --------------------------------------------------------


def _digits(line: str) -> str:
    """A line of the live display, whatever the progress: no counts, no bar filling."""
    return re.sub(r"\d+", "N", re.sub(r"^\[[#.]+\]", "[bar]", normalized(line)))


def _pty(
    command: str, url: str, env: dict[str, str], cwd: Path, columns: int
) -> tuple[list[str], str]:
    """The screen a terminal of `columns` shows after `command` (blank lines out), and
    everything written to it."""
    argv = [sys.executable, "-m", "sprunner", *command.replace(DEMO_URL, url).split()[1:]]
    done = run_in_pty(argv, env=env, cwd=str(cwd), columns=columns, timeout=120)
    return [line for line in screen(done.output) if line.strip()], done.output


def test_the_operating_captures_are_what_sprunner_prints(tmp_path: Path) -> None:
    section = _section("Operating it unattended")
    consoles = [b for b in blocks() if b.lang == "console" and b.text in section]
    by_command = {b.console[0][0]: b for b in consoles}
    live, final = [b for b in consoles if "apply jobs --report report.json" in b.text]
    shutil.copytree(ROOT / "examples" / "jobs", tmp_path / "jobs")
    # The terminal's own size, not one inherited from the test runner's environment.
    skip = ("SCRAPINGPROS_", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["NO_COLOR"] = "1"
    # Runs of 4 s: the display is drawn several times while all four are in progress.
    with running_emulator(mode="simulate", run_seconds=4.0) as emulator:
        env["SCRAPINGPROS_API_KEY"] = emulator.api_key
        # On a 100-column terminal: the screen left is the final capture, line for line
        # (the runs end in any order); the display drawn meanwhile is the first one's.
        command = final.console[0][0]
        shown, raw = _pty(command, emulator.url, env, tmp_path, 100)
        expected = [normalized(x) for x in final.console[0][1]]
        assert Counter(normalized(x) for x in shown) == Counter(expected)
        drawn = {_digits(x) for x in re.split(r"[\r\n]+|\x1b\[[0-9;]*[A-Za-z]", raw)}
        _, during = live.console[0]
        bar = [x for x in during if x.startswith("[")]
        assert bar, during
        missing = [x for x in during[during.index(bar[0]) :] if _digits(x) not in drawn]
        assert not missing, (missing, sorted(x for x in drawn if "(N failed)" in x))
        assert all(normalized(x) in expected for x in during[: during.index(bar[0])])

        shell = shim(tmp_path / "bin") | {"SCRAPINGPROS_API_KEY": emulator.api_key}
        health = by_command[f"sprunner --api-url {DEMO_URL} apply jobs --no-run 2>/dev/null"]
        _check_console(
            health, run_lines([health.console[0][0]], cwd=tmp_path, env=shell, url=emulator.url)
        )

        status = by_command[f"sprunner --api-url {DEMO_URL} status jobs --runs 5"]
        shown, _ = _pty(status.console[0][0], emulator.url, env, tmp_path, 140)
        assert [normalized(x) for x in shown] == [
            normalized(x) for x in status.console[0][1] if x.strip()
        ]

        emulator.engine.run_seconds = 5.0  # as in the capture
        progress = next(b for b in consoles if "--progress-every" in b.text)
        [printed] = run_lines([progress.console[0][0]], cwd=tmp_path, env=shell, url=emulator.url)
        assert _collapsed(printed.splitlines()) == _collapsed(progress.console[0][1])
        emulator.engine.run_seconds = 1.0

        _check_json_and_metrics(section, tmp_path, shell, emulator)


def _collapsed(lines: list[str]) -> list[str]:
    """Digits out of the progress lines (how far a run got at a tick), and repeats as one."""
    out: list[str] = []
    for line in lines:
        line = _digits(line) if "progress: " in line else normalized(line)
        if not out or out[-1] != line:
            out.append(line)
    return out


def _check_json_and_metrics(
    section: str, cwd: Path, env: dict[str, str], emulator: EmulatorHandle
) -> None:
    """The JSON line shown has the keys of a real one, in order; the metrics sample has the
    families (name, type, help) sprunner writes; the alert rules name series it writes."""
    import json

    [printed] = run_lines(
        [
            "sprunner --log-format json apply jobs --select shop-categories "
            "--metrics sprunner.prom 2>&1 >/dev/null | grep run_started"
        ],
        cwd=cwd,
        env=env | {"SCRAPINGPROS_API_URL": emulator.url},
    )
    real = json.loads(printed)
    shown = json.loads(next(x for x in section.splitlines() if x.startswith('{"ts"')))
    assert list(shown) == list(real)
    written = {
        (f.name, f.type, f.documentation)
        for f in text_string_to_metric_families((cwd / "sprunner.prom").read_text())
    }
    sample = next(b.text for b in blocks() if b.text.startswith("# HELP ") and b.text in section)
    assert {(f.name, f.type, f.documentation) for f in text_string_to_metric_families(sample)} == (
        written
    )
    rules = section.split("# Prometheus alerting rules", 1)[1].split("```", 1)[0]
    names = {name for name, _, _ in written}
    for series in re.findall(r"sprunner_\w+", rules):
        assert series in names or series.removesuffix("_total") in names, series


def test_the_events_table_is_the_list_of_events() -> None:
    section = _section("Operating it unattended")
    rows = [x for x in section.splitlines() if x.startswith("| `")]
    expected = [f"| `{name}` | {fields or '-'} | {meaning} |" for name, fields, meaning in EVENTS]
    assert rows == expected
