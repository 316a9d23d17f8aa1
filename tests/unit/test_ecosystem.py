"""sprunner where its users work: the pre-commit hook, the scheduler recipes, completion, colour.

The recipes under deploy are checked twice: their files parse (YAML, systemd units,
crontab), and every sprunner command line in them goes through the real click parser, so an
option renamed in cli.py breaks this test rather than a user's cron job.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sprunner.cli.app import cli
from sprunner.output.ui import Output
from sprunner.settings import ApplyOptions, GlobalOptions, Selection

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VALID_JOB_FILE = """\
version: 1
collections:
  - name: hello
    requests:
      - url: https://example.com/
"""


@dataclass
class ApplyCall:
    selection: Selection
    options: GlobalOptions
    apply_options: ApplyOptions
    output: Output


@pytest.fixture
def parse_apply(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run argv through the real CLI with `apply`'s core function replaced by a recorder."""
    from sprunner.commands import apply as apply_command

    calls: list[ApplyCall] = []

    def record(
        selection: Selection, *, options: GlobalOptions, output: Output, apply_options: ApplyOptions
    ) -> int:
        calls.append(ApplyCall(selection, options, apply_options, output))
        return 0

    monkeypatch.setattr(apply_command, "run", record)

    def parse(argv: list[str], env: dict[str, str] | None = None) -> ApplyCall:
        result = CliRunner(env=env).invoke(cli, argv, catch_exceptions=False)
        assert result.exit_code == 0, f"{argv}: {result.output}"
        return calls.pop()

    return parse


def _sprunner_argv(command: str) -> list[str]:
    """The arguments after the `sprunner` executable in a shell command line."""
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == "sprunner" or word.endswith("/sprunner"):
            rest = words[i + 1 :]
            # Stop at shell syntax: redirections, `&&`, pipes.
            for j, token in enumerate(rest):
                if token in {"&&", "||", "|", ";", ">", ">>", "2>&1"}:
                    return rest[:j]
            return rest
    raise AssertionError(f"no sprunner command in {command!r}")


# --- pre-commit --------------------------------------------------------------------------------


def _hook() -> dict[str, Any]:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert isinstance(hooks, list)
    (hook,) = (h for h in hooks if h["id"] == "sprunner-validate")
    assert isinstance(hook, dict)
    return hook


def test_pre_commit_hook_declares_sprunner_validate() -> None:
    hook = _hook()
    assert shlex.split(hook["entry"]) == ["sprunner", "validate"]
    assert hook["language"] == "python"
    # The whole tree in one process: pre-commit would split file names over parallel runs,
    # and a name declared twice is only seen with both files together.
    assert hook["pass_filenames"] is False
    assert hook["require_serial"] is True
    files = re.compile(hook["files"])
    changed = ("jobfiles/shop.yaml", "jobfiles/sub/a.yml", "jobfiles/data/skus.txt")
    assert all(files.search(n) for n in changed)
    other = (
        ".pre-commit-config.yaml",
        ".github/workflows/ci.yml",
        "docker-compose.yaml",
        "examples/jobs/shop.yaml",
        "src/jobfiles.yaml",
    )
    assert not any(files.search(n) for n in other)


def test_pre_commit_entry_is_the_installed_console_script() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"][shlex.split(_hook()["entry"])[0]] == "sprunner.cli:main"


def _run_hook(cwd: Path) -> subprocess.CompletedProcess[str]:
    """What pre-commit runs: the entry plus the hook's args, no file names, in the repo root."""
    hook = _hook()
    argv = [*shlex.split(hook["entry"])[1:], *hook.get("args", [])]
    return subprocess.run(
        [sys.executable, "-m", "sprunner", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_pre_commit_hook_validates_the_whole_tree(tmp_path: Path) -> None:
    jobs = tmp_path / "jobfiles"
    (jobs / "team").mkdir(parents=True)
    (jobs / "a.yaml").write_text(VALID_JOB_FILE, encoding="utf-8")
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n", encoding="utf-8")
    good = _run_hook(tmp_path)
    assert good.returncode == 0, good.stderr

    # Only this file is staged, but its name clashes with one in an unchanged file.
    (jobs / "team" / "b.yaml").write_text(VALID_JOB_FILE, encoding="utf-8")
    clash = _run_hook(tmp_path)
    assert clash.returncode == 2
    assert "duplicate collection name 'hello'" in clash.stderr

    (jobs / "team" / "b.yaml").write_text(
        VALID_JOB_FILE.replace("requests:", "reqests:"), encoding="utf-8"
    )
    typo = _run_hook(tmp_path)
    assert typo.returncode == 2
    assert "b.yaml" in typo.stderr


# --- cron --------------------------------------------------------------------------------------


def _crontab_entries() -> list[str]:
    text = (DEPLOY / "crontab").read_text(encoding="utf-8")
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_crontab_line_has_a_schedule_and_a_valid_apply(parse_apply: Any) -> None:
    from croniter import croniter

    (entry,) = _crontab_entries()
    fields = entry.split(None, 5)
    assert len(fields) == 6
    assert croniter.is_valid(" ".join(fields[:5]))
    command = fields[5]
    assert "sprunner" in command and " apply" in command
    assert re.search(r">>\s*\S+\s+2>&1\s*$", command), "stdout and stderr go to a log file"
    # cron turns an unescaped % into a newline.
    assert "%" not in command.replace("\\%", "")
    assert "flock" not in command  # our own lock does it: a second apply exits 4

    call = parse_apply(_sprunner_argv(command))
    assert call.options.api_key_file is not None
    assert call.apply_options.report is not None


def test_crontab_explains_every_exit_code() -> None:
    text = (DEPLOY / "crontab").read_text(encoding="utf-8")
    for code in ("0", "1", "2", "3", "4", "130", "143"):
        assert re.search(rf"^#\s+{code}\b", text, re.MULTILINE), code


# --- systemd -----------------------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / "systemd" / name).read_text(encoding="utf-8"))
    return parser


def test_systemd_service_is_a_oneshot_apply_with_a_credential(parse_apply: Any) -> None:
    unit = _unit("sprunner.service")
    assert set(unit.sections()) == {"Unit", "Service"}
    service = unit["Service"]
    assert service["Type"] == "oneshot"
    assert service["WorkingDirectory"].startswith("/")
    assert "SuccessExitStatus" not in service
    credential, _, source = service["LoadCredential"].partition(":")
    assert source.startswith("/")

    call = parse_apply(_sprunner_argv(service["ExecStart"]))
    assert str(call.options.api_key_file) == f"${{CREDENTIALS_DIRECTORY}}/{credential}"
    state_root = Path("/var/lib") / service["StateDirectory"]
    assert call.options.state_dir.is_relative_to(state_root)
    assert call.apply_options.report is not None
    assert call.apply_options.report.is_relative_to(state_root)  # the only writable place


def test_systemd_timer_is_persistent_and_starts_the_service() -> None:
    unit = _unit("sprunner.timer")
    timer = unit["Timer"]
    assert timer["OnCalendar"]
    assert timer["Persistent"] == "true"
    assert timer["Unit"] == "sprunner.service"
    assert unit["Install"]["WantedBy"] == "timers.target"


# --- Kubernetes --------------------------------------------------------------------------------


def _manifests(name: str) -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text(encoding="utf-8"))
    return {d["kind"]: d for d in docs if d}


def _pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _mounts(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """mountPath → the volume mounted there."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = pod["containers"]
    return {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}


def _volume_at(pod: dict[str, Any], path: Path) -> dict[str, Any]:
    for mount, volume in _mounts(pod).items():
        if path.is_relative_to(mount):
            return volume
    raise AssertionError(f"{path} is on no volume")


def _check_pod_paths(pod: dict[str, Any], call: ApplyCall, claim: str) -> None:
    assert call.options.api_key_file is not None
    assert "secret" in _volume_at(pod, call.options.api_key_file)
    for path in (call.options.state_dir, call.apply_options.report, call.apply_options.junit):
        assert path is not None
        volume = _volume_at(pod, path)
        assert volume["persistentVolumeClaim"]["claimName"] == claim


def test_kubernetes_cronjob(parse_apply: Any, tmp_path: Path) -> None:
    manifests = _manifests("cronjob.yaml")
    cronjob, claim = manifests["CronJob"], manifests["PersistentVolumeClaim"]
    assert cronjob["apiVersion"] == "batch/v1"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = _pod(cronjob)
    (container,) = pod["containers"]
    assert pod["restartPolicy"] == "Never"

    # The job-file path must exist for click; point it at an empty folder.
    argv = [str(tmp_path) if a == "/work/jobfiles" else a for a in container["args"]]
    assert argv != container["args"]
    call = parse_apply(argv)
    _check_pod_paths(pod, call, claim["metadata"]["name"])
    # One report per Job, kept on the volume: Kubernetes expands $(JOB_NAME).
    assert "$(JOB_NAME)" in str(call.apply_options.report)
    assert "JOB_NAME" in {e["name"] for e in container["env"]}


def test_kubernetes_indexed_cronjob_gives_each_shard_its_own_state(
    parse_apply: Any, tmp_path: Path
) -> None:
    manifests = _manifests("cronjob-sharded.yaml")
    cronjob, claim = manifests["CronJob"], manifests["PersistentVolumeClaim"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    pod = _pod(cronjob)
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    shards = int(env["SHARDS"])
    assert job["completions"] == job["parallelism"] == shards
    assert container["command"] == ["/bin/sh", "-c"]
    (script,) = container["args"]

    calls = []
    for index in range(shards):  # what the shell makes of the script in pod `index`
        expanded = (
            script.replace("$((JOB_COMPLETION_INDEX + 1))", str(index + 1))
            .replace("$JOB_COMPLETION_INDEX", str(index))
            .replace("$SHARDS", str(shards))
            .replace("$JOB_NAME", "sprunner-sharded-29000000")
        )
        assert "$" not in expanded
        argv = _sprunner_argv(expanded)
        calls.append(parse_apply([str(tmp_path) if a == "/work/jobfiles" else a for a in argv]))

    assert [str(c.selection.shard) for c in calls] == [f"{i}/{shards}" for i in range(1, 4)]
    assert len({c.options.state_dir for c in calls}) == shards
    assert len({c.apply_options.report for c in calls}) == shards
    for call in calls:
        _check_pod_paths(pod, call, claim["metadata"]["name"])


def test_kubernetes_postgres_cronjob_shares_one_database_over_pods_with_no_volume(
    parse_apply: Any, tmp_path: Path
) -> None:
    manifests = _manifests("cronjob-postgres.yaml")
    assert set(manifests) == {"CronJob"}  # no PersistentVolumeClaim
    cronjob = manifests["CronJob"]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["parallelism"] == job["completions"] > 1
    pod = _pod(cronjob)
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])
    (container,) = pod["containers"]
    (url,) = [e for e in container["env"] if e["name"] == "SPRUNNER_STATE_URL"]
    assert url["valueFrom"]["secretKeyRef"]  # the password never in the manifest
    # Every pod runs the same command: the database shares the work, not --shard.
    argv = [str(tmp_path) if a == "/work/jobfiles" else a for a in container["args"]]
    call = parse_apply(argv, env={"SPRUNNER_STATE_URL": "postgresql://u:p@db/sprunner"})
    assert call.options.state_url == "postgresql://u:p@db/sprunner"
    assert call.selection.shard is None
    assert call.options.api_key_file is not None
    assert "secret" in _volume_at(pod, call.options.api_key_file)


# --- GitHub Actions ----------------------------------------------------------------------------


def _workflow() -> dict[str, Any]:
    text = (DEPLOY / "github-actions" / "sprunner.yml").read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    assert isinstance(workflow, dict)
    # YAML 1.1 reads the bare key `on` as True; GitHub reads it as "on".
    workflow["on"] = workflow.pop(True)
    return workflow


def _steps() -> list[dict[str, Any]]:
    (job,) = _workflow()["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def test_github_workflow_triggers_and_concurrency() -> None:
    from croniter import croniter

    workflow = _workflow()
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert all(croniter.is_valid(s["cron"]) for s in workflow["on"]["schedule"])
    assert workflow["concurrency"]["cancel-in-progress"] is False
    uses = {s["uses"].split("@")[0] for s in _steps() if "uses" in s}
    assert {"actions/upload-artifact", "actions/cache/restore", "actions/cache/save"} <= uses
    assert all("@" in s["uses"] for s in _steps() if "uses" in s)


def test_github_workflow_applies_with_reports_and_keeps_them(parse_apply: Any) -> None:
    steps = _steps()
    (apply_step,) = (s for s in steps if "sprunner apply" in s.get("run", ""))
    assert apply_step["env"]["SCRAPINGPROS_API_KEY"] == "${{ secrets.SCRAPINGPROS_API_KEY }}"
    line = apply_step["run"]
    optional = '${SELECT:+--select "$SELECT"}'
    assert optional in line
    plain = parse_apply(_sprunner_argv(line.replace(optional, "")))
    assert plain.apply_options.report == Path("report.json")
    assert plain.apply_options.junit == Path("junit.xml")
    selected = parse_apply(_sprunner_argv(line.replace(optional, '--select "tag:daily"')))
    assert selected.selection.select == ("tag:daily",)

    (upload,) = (s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert set(upload["with"]["path"].split()) == {"report.json", "junit.xml"}
    cached = {s["with"]["path"] for s in steps if s.get("uses", "").startswith("actions/cache")}
    assert cached == {_workflow()["jobs"]["apply"]["env"]["SPRUNNER_STATE_DIR"]}


def test_github_workflow_summary_renders_a_real_report(tmp_path: Path) -> None:
    from sprunner.report.document import dumps
    from sprunner.report.outcome import ApplyOutcome, CollectionOutcome, RunOutcome, ShownJob

    (step,) = (s for s in _steps() if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert step["shell"] == "python" and step["if"] == "always()"
    run = RunOutcome(
        "completed",
        "r1",
        total_requests=7,
        success_requests=5,
        failed_requests=1,
        timeout_requests=1,
        failed_jobs=(ShownJob("j", "https://x.example/", "failed", "boom"),),
        within_max_failed=False,
    )
    outcome = ApplyOutcome(
        "https://api.example.com",
        1.0,
        2.0,
        (
            CollectionOutcome("shop", "a.yaml", "create", "c1", 7, run),
            CollectionOutcome("blocked", "a.yaml", "error", error="422 | URL blocked"),
            CollectionOutcome("later", "a.yaml", "unchanged", "c3", 2, RunOutcome("skipped")),
        ),
    )
    script = tmp_path / "summary.py"
    script.write_text(step["run"], encoding="utf-8")
    summary = tmp_path / "summary.md"

    def render() -> str:
        env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
        subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, check=True)
        return summary.read_text(encoding="utf-8")

    assert "No report" in render()  # the apply stopped before writing one
    summary.unlink()
    (tmp_path / "report.json").write_text(dumps(outcome), encoding="utf-8")
    text = render()
    assert "sprunner FAILED" in text
    assert "| ❌ | `shop` | created | completed | 2 / 7 |" in text
    assert "422 \\| URL blocked" in text  # a | in an error does not break the table
    assert "| ✅ | `later` | unchanged | skipped |  |" in text
    json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))


# --- GitLab CI --------------------------------------------------------------------------------
# Schema-checked by check-jsonschema in tests/unit/test_recipe_tools.py.


def _gitlab() -> dict[str, Any]:
    text = (DEPLOY / "gitlab-ci" / "sprunner.gitlab-ci.yml").read_text(encoding="utf-8")
    pipeline = yaml.safe_load(text)
    assert isinstance(pipeline, dict)
    return pipeline


def _sources(job: dict[str, Any]) -> set[str]:
    return set(re.findall(r'\$CI_PIPELINE_SOURCE == "(\w+)"', str(job["rules"])))


def test_gitlab_scheduled_apply_keeps_its_reports_and_state(parse_apply: Any) -> None:
    pipeline = _gitlab()
    apply = pipeline["apply"]
    assert _sources(apply) == {"schedule", "web"}
    assert apply["resource_group"]  # never two applies at once across runners
    (line,) = apply["script"]
    call = parse_apply(_sprunner_argv(line))
    assert (call.apply_options.report, call.apply_options.junit) == (
        Path("report.json"),
        Path("junit.xml"),
    )
    artifacts = apply["artifacts"]
    assert artifacts["when"] == "always"  # the report of a failed apply is the one to read
    assert set(artifacts["paths"]) == {"report.json", "junit.xml"}
    assert artifacts["reports"]["junit"] == "junit.xml"
    state = pipeline["variables"]["SPRUNNER_STATE_DIR"]
    assert apply["cache"]["paths"] == [f"{state}/"] and apply["cache"]["when"] == "always"


def test_gitlab_merge_requests_get_a_junit_report_and_a_plan_gate() -> None:
    from sprunner.errors import EXIT_CHANGES_PENDING

    pipeline = _gitlab()
    check = pipeline["check"]
    assert _sources(check) == {"merge_request_event"}
    assert check["artifacts"]["reports"]["junit"] in check["artifacts"]["paths"]
    plan = pipeline["plan"]
    assert _sources(plan) == {"merge_request_event"}
    # Only where the protected key variable is there; 10 (changes pending) is a warning.
    assert "$SCRAPINGPROS_API_KEY_FILE" in str(plan["rules"])
    assert plan["script"] == ["sprunner plan --detailed-exitcode"]
    assert plan["allow_failure"] == {"exit_codes": [EXIT_CHANGES_PENDING]}
    # The key reaches sprunner as a File variable: a path in SCRAPINGPROS_API_KEY_FILE.
    assert "SCRAPINGPROS_API_KEY:" not in str(pipeline)


def test_gitlab_merge_request_check_runs_on_the_demo_job_files(tmp_path: Path) -> None:
    """The `check` job's script, run for real: no key, nothing leaves the machine."""
    shutil.copytree(ROOT / "examples" / "jobs", tmp_path / "jobfiles")
    check = _gitlab()["check"]
    for line in check["script"]:
        done = subprocess.run(
            [sys.executable, "-m", "sprunner", *_sprunner_argv(line)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{line}: {done.stderr}"
    junit = tmp_path / check["artifacts"]["reports"]["junit"]
    assert junit.read_text(encoding="utf-8").count("<testcase ") == 4


def test_deploy_readme_documents_sharding() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for needle in ("--shard I/N", "JOB_COMPLETION_INDEX", "own state directory", "exits 4"):
        assert needle in text, needle
    names = ("crontab", "sprunner.service", "sprunner.timer", "cronjob.yaml", "sprunner.yml")
    for name in (*names, "sprunner.gitlab-ci.yml", "Dockerfile"):
        assert name in text, name


def test_deploy_readme_says_global_options_go_before_or_after_the_command() -> None:
    text = " ".join((DEPLOY / "README.md").read_text(encoding="utf-8").split())
    assert "go before or after the command name" in text  # SPEC §3
    assert "go *before* the command" not in text
    # Both orders parse alike (tests/e2e/test_ops.py runs an apply with them after).


# --- completion and colour ---------------------------------------------------------------------

SOURCE_MARKERS = {
    "bash": "complete -o nosort -F _sprunner_completion sprunner",
    "zsh": "#compdef sprunner",
    "fish": "complete --no-files --command sprunner",
}


@pytest.mark.parametrize("shell", sorted(SOURCE_MARKERS))
def test_completion_scripts_are_produced(shell: str) -> None:
    runner = CliRunner(env={"_SPRUNNER_COMPLETE": f"{shell}_source"})
    result = runner.invoke(cli, [], prog_name="sprunner", catch_exceptions=False)
    assert result.exit_code == 0
    assert SOURCE_MARKERS[shell] in result.stdout
    assert "_SPRUNNER_COMPLETE" in result.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("sprunner ap", "apply"),
        ("sprunner apply --ju", "--junit"),
        ("sprunner --state", "--state-dir"),
    ],
)
def test_completion_completes_commands_and_options(words: str, expected: str) -> None:
    env = {
        "_SPRUNNER_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    result = CliRunner(env=env).invoke(cli, [], prog_name="sprunner", catch_exceptions=False)
    assert result.exit_code == 0
    assert f"plain,{expected}" in result.stdout.splitlines()


def test_completion_works_through_the_program_entry_point() -> None:
    # What `eval "$(_SPRUNNER_COMPLETE=bash_source sprunner)"` runs: main() names the program.
    env = {**os.environ, "_SPRUNNER_COMPLETE": "bash_source"}
    result = subprocess.run(
        [sys.executable, "-m", "sprunner"], env=env, capture_output=True, text=True, check=True
    )
    assert SOURCE_MARKERS["bash"] in result.stdout


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# (environment, colour on a terminal, colour on a pipe): `ui.color_mode`'s conventions.
COLOR_CONVENTIONS = [
    ({}, True, False),
    ({"TERM": "xterm-256color"}, True, False),
    ({"NO_COLOR": "1"}, False, False),
    ({"NO_COLOR": ""}, True, False),  # no-color.org: only a non-empty value counts
    ({"FORCE_COLOR": "1"}, True, True),
    ({"FORCE_COLOR": "0"}, True, True),  # force-color.org: whatever the value
    ({"FORCE_COLOR": ""}, True, False),
    ({"CLICOLOR_FORCE": "1"}, True, True),
    ({"CLICOLOR_FORCE": "0"}, True, False),
    ({"CLICOLOR": "0"}, False, False),
    ({"TERM": "dumb"}, False, False),
    ({"TERM": "dumb", "FORCE_COLOR": "1"}, True, True),
    ({"TERM": "dumb", "CLICOLOR_FORCE": "1"}, True, True),
    ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),
    ({"NO_COLOR": "1", "CLICOLOR_FORCE": "1"}, False, False),
]


@pytest.mark.parametrize(("env", "on_terminal", "on_pipe"), COLOR_CONVENTIONS, ids=str)
def test_colour_follows_the_environment_conventions(
    parse_apply: Any, env: dict[str, str], on_terminal: bool, on_pipe: bool
) -> None:
    call = parse_apply(["apply"], env=env)
    assert call.output.use_color(_Terminal()) is on_terminal
    assert call.output.use_color(io.StringIO()) is on_pipe


@pytest.mark.parametrize(
    ("env", "colored"),
    [({}, False), ({"FORCE_COLOR": "1"}, True), ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False)],
)
def test_colour_reaches_a_pipe_only_when_forced(
    tmp_path: Path, env: dict[str, str], colored: bool
) -> None:
    """The program as CI runs it: stderr is a pipe, so only FORCE_COLOR colours it."""
    (tmp_path / "bad.yaml").write_text("version: 1\ncollections: 5\n", encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    done = subprocess.run(
        [sys.executable, "-m", "sprunner", "validate", "bad.yaml"],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "bad.yaml" in done.stderr
    assert ("\x1b[" in done.stderr) is colored
