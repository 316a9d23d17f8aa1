"""The API key and env() values never leak: not to stdout, stderr, the report, the JUnit
file, the state directory or any other file sprunner writes, on any failure path.

One test drives every path with a recognisable key and env() value, behind an emulator that
is as indiscreet as an API can be: its error bodies echo the `Authorization` header and the
request body back, placed so that a message cut at its length limit would cut them in half.
At the end every byte sprunner produced is searched for the secrets and for any 8-character
piece of them (a half-masked secret is a leaked secret).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from sprunner.cli.app import cli
from sprunner.emulator.server import EmulatorHandle, running_emulator
from tests.e2e.apply_helpers import QUICK_RETRIES
from tests.e2e.hostile import CID, PREFIX, RID, Answer, Call, Hostile, Rule

KEY = "sk-LIVE-7f3a9c2e-SECRET"
ENV_NAME = "SHOP_TOKEN"
ENV_VALUE = "tok-ENVSECRET-91b2"

IN_PROGRESS = {
    "run_id": "r",
    "status": "in_progress",
    "total_requests": 1,
    "success_requests": 0,
    "failed_requests": 0,
    "timeout_requests": 0,
}
JOBS = """
version: 1
collections:
  - name: failing-jobs
    requests:
      - url: "https://shop.example.com/fail?token={{ env('SHOP_TOKEN') }}"
      - url: "https://shop.example.com/timeout/{{ env('SHOP_TOKEN') }}"
      - url: https://shop.example.com/ok
        headers: {Authorization: "Bearer {{ env('SHOP_TOKEN') }}"}
    run: {poll_interval: 0.1s, timeout: 5s}
  - name: looped
    requests:
      - url: "https://shop.example.com/{{ t }}/{{ n }}"
        foreach:
          t: "{{ [env('SHOP_TOKEN')] }}"
          n: [1, 2]
    run: {poll_interval: 0.1s, timeout: 5s}
  - name: create-echo
    requests:
      - url: "https://echo.example.com/?t={{ env('SHOP_TOKEN') }}"
  - name: never-done
    requests:
      - url: "https://slow.example.com/{{ env('SHOP_TOKEN') }}"
    run: {poll_interval: 0.1s, timeout: 0.5s}
  - name: run-echo
    requests:
      - url: "https://run.example.com/{{ env('SHOP_TOKEN') }}"
    run: {poll_interval: 0.1s, timeout: 5s}
"""

INVALID = [
    "url: \"{{ env('SHOP_TOKEN') }}\"",
    "url: \"ftp://x.example/{{ env('SHOP_TOKEN') }}\"",
    "url: \"ftp://xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/{{ env('SHOP_TOKEN') }}\"",
    "url: \"https://x.example/{{ {}[env('SHOP_TOKEN')] }}\"",
    "url: \"https://x.example/{{ lines(env('SHOP_TOKEN')) }}\"",
    "url: \"https://x.example/{{ env(env('SHOP_TOKEN')) }}\"",
    "url: \"https://x.example/{{ date_range(env('SHOP_TOKEN'), '2024-01-01') }}\"",
    "url: https://x.example/{{ x }}\n        foreach: {x: \"{{ env('SHOP_TOKEN') }}\"}",
    "url: https://x.example/\n        custom_id: \"{{ env('SHOP_TOKEN') * 20 }}\"",
]


def echo(call: Call, secret: str) -> str:
    """What an indiscreet server says back: the key and the body, padded so that a message
    cut at 300 characters (`api.errors.shorten`) ends 10 characters into `secret`."""
    text = f"{call.headers.get('authorization', '')} {call.body.decode()}"
    at = text.find(secret)
    assert at >= 0, f"the call does not carry {secret!r}"
    return "p" * (300 - at - 10) + text


def echo_answer(status: int, secret: str = KEY) -> Callable[[Call], Answer]:
    def answer(call: Call) -> Answer:
        return Answer(status, json.dumps({"detail": echo(call, secret)}).encode())

    return answer


def named(engine_name: str, emulator: EmulatorHandle) -> Callable[[Call], bool]:
    def when(call: Call) -> bool:
        if "cid" in call.match.groupdict():
            stored = emulator.engine.collections.get(call["cid"])
            return stored is not None and stored.name == engine_name
        return f'"name":"{engine_name}"'.encode() in call.body.replace(b" ", b"")

    return when


@pytest.fixture
def hostile() -> Hostile:
    return Hostile()


@pytest.fixture
def emulator(hostile: Hostile) -> Iterator[EmulatorHandle]:
    with running_emulator(
        mode="simulate", run_seconds=0.2, api_key=KEY, wrap=hostile.wrap
    ) as handle:
        yield handle


class Outputs:
    """Runs sprunner and keeps everything it printed."""

    def __init__(self, emulator: EmulatorHandle, workdir: Path) -> None:
        self.emulator = emulator
        self.workdir = workdir
        self.state_dir = workdir / "state"
        self.printed: list[str] = []

    def __call__(self, *args: str, key: str = KEY, url: str | None = None) -> Result:
        env = {"SCRAPINGPROS_API_KEY": key, ENV_NAME: ENV_VALUE}
        base = ["--api-url", url or self.emulator.url, "--state-dir", str(self.state_dir), "-vv"]
        result = CliRunner().invoke(
            cli, [*base, *args], env=env, catch_exceptions=False, obj=QUICK_RETRIES
        )
        self.printed += [result.stdout, result.stderr]
        assert "Traceback" not in result.output, result.output
        return result


def pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def assert_nothing_leaked(texts: dict[str, str]) -> None:
    for where, text in texts.items():
        for secret in (KEY, ENV_VALUE):
            leaked = sorted(p for p in pieces(secret) if p in text)
            assert not leaked, f"{where} holds {leaked} of {secret!r}"


def test_no_failure_path_leaks_the_key_or_env_values(
    emulator: EmulatorHandle, hostile: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_NAME, ENV_VALUE)  # for load() in this process, as in the CLI's
    work = tmp_path / "work"
    work.mkdir()
    job = work / "jobs.yaml"
    job.write_text(JOBS)
    run = Outputs(emulator, work)

    # Read-only commands, verbose.
    for args in (["validate"], ["render"], ["render", "--json"], ["plan"], ["plan", "--json"]):
        assert run(*args, str(job)).exit_code == 0

    # Invalid job files whose messages would quote the secret.
    for number, request in enumerate(INVALID):
        bad = work / "invalid" / f"bad{number}.yaml"
        bad.parent.mkdir(exist_ok=True)
        bad.write_text(
            f"version: 1\ncollections:\n  - name: bad\n    requests:\n      - {request}\n"
        )
        for command in ("validate", "render", "plan", "apply"):
            result = run(command, str(bad))
            assert result.exit_code == 2, result.output

    # A bad key, refused with a body that echoes it: exit 3.
    hostile.rules.append(Rule("GET", PREFIX, echo_answer(401), times=1))
    assert run("apply", str(job)).exit_code == 3
    # The first list failing with 5xx echoes: exit 3.
    hostile.rules.append(Rule("GET", PREFIX, echo_answer(503), times=6))
    assert run("apply", str(job)).exit_code == 3
    hostile.rules.clear()

    # An apply where everything goes wrong, one collection at a time.
    hostile.rules += [
        Rule("POST", PREFIX, echo_answer(500), when=named("create-echo", emulator)),
        Rule(
            "GET",
            f"{PREFIX}/{CID}/runs/{RID}",
            lambda call: Answer(200, json.dumps({**IN_PROGRESS, "run_id": call["rid"]}).encode()),
            when=named("never-done", emulator),
        ),
        Rule("POST", f"{PREFIX}/{CID}/run", echo_answer(422), when=named("run-echo", emulator)),
    ]
    report, junit = work / "report.json", work / "junit.xml"
    args = ("apply", str(job), "--report", str(report), "--junit", str(junit))
    result = run(*args)
    assert result.exit_code == 1, result.output
    outcome = {c["name"]: c for c in json.loads(report.read_text())["collections"]}
    assert outcome["failing-jobs"]["run"]["failed_jobs"]  # they are reported, masked
    assert outcome["create-echo"]["action"] == "error"
    assert outcome["never-done"]["run"]["status"] == "timed_out"
    assert outcome["run-echo"]["run"]["status"] == "error"
    # Again with --json on stdout, and with a PUT refused with an echo.
    job.write_text(JOBS.replace("/ok", "/ok2"))
    hostile.rules.append(
        Rule(
            "PUT",
            f"{PREFIX}/{CID}",
            echo_answer(422, ENV_VALUE),
            when=named("failing-jobs", emulator),
        )
    )
    assert run(*args, "--json").exit_code == 1

    # The key is never sent over plain http to a host that is not loopback.
    assert run("apply", str(job), url="http://api.example.test:9").exit_code == 2

    texts = {f"output {i}": text for i, text in enumerate(run.printed)}
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path.suffix not in (".yaml",):
            texts[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    assert any("report.json" in name for name in texts) and any("state" in n for n in texts)
    assert_nothing_leaked(texts)


def test_the_key_is_refused_over_plain_http_to_a_remote_host(
    emulator: EmulatorHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`api.example.test` resolves to the emulator here; sprunner must not even connect."""
    real = socket.getaddrinfo

    def resolve(host: object, *args: object, **kw: object) -> object:
        return real("127.0.0.1" if host == "api.example.test" else host, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    remote = f"http://api.example.test:{emulator.port}"
    # The control: a plain client does reach the emulator through that name.
    assert (
        httpx.get(f"{remote}{PREFIX}", headers={"Authorization": f"Bearer {KEY}"}).status_code
        == 200
    )
    emulator.engine.calls.clear()
    job = tmp_path / "jobs.yaml"
    job.write_text(JOBS)
    run = Outputs(emulator, tmp_path)
    for command in ("plan", "apply"):
        result = run(command, str(job), url=remote)
        assert result.exit_code == 2, result.output
        assert "refusing to send the API key over plain http to api.example.test" in result.output
    assert emulator.engine.calls == {}
    assert run("plan", str(job), url=f"http://localhost:{emulator.port}").exit_code == 0
    assert_nothing_leaked({f"output {i}": text for i, text in enumerate(run.printed)})
