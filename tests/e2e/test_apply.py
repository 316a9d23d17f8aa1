"""`sprunner apply` and `plan` end to end: the CLI against the emulator over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sprunner.apply.track import CUT_SHORT
from sprunner.emulator.server import running_emulator
from tests.e2e.apply_helpers import Sprunner, write_job

TWO = """
version: 1
collections:
  - name: shop
    requests:
      - url: "https://shop.example.com/c/{{ cat }}"
        foreach:
          cat: [shoes, hats]
    run:
      poll_interval: 0.2s
  - name: blog
    requests:
      - url: https://blog.example.com/
      - url: https://blog.example.com/fail
    run:
      poll_interval: 0.2s
      max_failed: 1
"""


@pytest.fixture
def sprunner(tmp_path: Path) -> Iterator[Sprunner]:
    with running_emulator(mode="simulate", run_seconds=0.3) as emulator:
        yield Sprunner(emulator, tmp_path / "state", tmp_path)


def test_first_apply_creates_and_runs_then_the_second_writes_nothing(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, TWO)
    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    assert report["ok"] is True
    assert [(c["name"], c["action"], c["run"]["status"]) for c in report["collections"]] == [
        ("shop", "created", "completed"),
        ("blog", "created", "completed"),
    ]
    blog = report["collections"][1]["run"]
    assert blog["failed_requests"] == 1
    assert blog["failed_jobs"][0]["url"] == "https://blog.example.com/fail"
    # Charged (`sprunner.credits`): the 3 successful requests; the failed one is refunded.
    assert report["summary"]["credits"] == 3
    assert sprunner.remote() == {
        "shop": [
            [
                {"url": "https://shop.example.com/c/shoes"},
                {"url": "https://shop.example.com/c/hats"},
            ]
        ],
        "blog": [[{"url": "https://blog.example.com/"}, {"url": "https://blog.example.com/fail"}]],
    }

    sprunner.reset_calls()
    result, report = sprunner.apply(job, "--no-run")
    assert result.exit_code == 0, result.output
    assert [c["action"] for c in report["collections"]] == ["unchanged", "unchanged"]
    assert sprunner.calls() == {"list": 1}


def test_an_edited_file_yields_exactly_one_put(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, TWO)
    assert sprunner.apply(job, "--no-run")[0].exit_code == 0
    write_job(tmp_path, TWO.replace("[shoes, hats]", "[shoes, hats, socks]"))
    sprunner.reset_calls()
    result, report = sprunner.apply(job, "--no-run")
    assert result.exit_code == 0, result.output
    assert [c["action"] for c in report["collections"]] == ["updated", "unchanged"]
    assert sprunner.calls() == {"list": 1, "update": 1}
    assert len(sprunner.remote()["shop"][0]) == 3


def test_plan_shows_changes_and_offers_a_detailed_exit_code(
    sprunner: Sprunner, tmp_path: Path
) -> None:
    job = write_job(tmp_path, TWO)
    result = sprunner("plan", str(job), "--detailed-exitcode")
    assert result.exit_code == 10, result.output
    assert "+ shop" in result.output and "2 to create" in result.output
    assert "create" not in sprunner.calls() and sprunner.calls() == {"list": 1}
    sprunner.apply(job, "--no-run")
    write_job(tmp_path, TWO.replace("[shoes, hats]", "[shoes, socks]"))
    result = sprunner("plan", str(job), "--json")
    assert result.exit_code == 0, result.output
    import json

    plan = json.loads(result.output)
    shop = plan["collections"][0]
    assert (shop["action"], shop["diff"]) == ("update", {"added": 1, "removed": 1, "changed": 0})
    assert plan["changes_pending"] is True
    write_job(tmp_path, TWO)
    assert sprunner("plan", str(job), "--detailed-exitcode").exit_code == 0


def test_a_remotely_deleted_collection_is_created_again(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, TWO)
    sprunner.apply(job, "--no-run")
    shop_id = next(c.id for c in sprunner.emulator.engine.collections.values() if c.name == "shop")
    del sprunner.emulator.engine.collections[shop_id]
    result, report = sprunner.apply(job, "--no-run")
    assert result.exit_code == 0, result.output
    assert [c["action"] for c in report["collections"]] == ["created", "unchanged"]
    assert len(sprunner.remote()["shop"]) == 1


def test_remote_duplicates_fail_only_that_collection(sprunner: Sprunner, tmp_path: Path) -> None:
    engine = sprunner.emulator.engine
    for _ in range(2):
        engine.create_collection({"name": "shop", "requests": [{"url": "https://x.example/"}]})
    job = write_job(tmp_path, TWO)
    result, report = sprunner.apply(job)
    assert result.exit_code == 1
    shop, blog = report["collections"]
    assert shop["action"] == "error" and "2 remote collections share this name" in shop["error"]
    assert blog["action"] == "created" and blog["ok"] is True
    assert len(sprunner.remote()["shop"]) == 2  # untouched


def test_deleting_the_state_costs_puts_never_duplicates(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, TWO)
    sprunner.apply(job, "--no-run")
    import shutil

    shutil.rmtree(sprunner.state_dir)
    sprunner.reset_calls()
    result, report = sprunner.apply(job, "--no-run")
    assert result.exit_code == 0, result.output
    assert [c["action"] for c in report["collections"]] == ["updated", "updated"]
    assert sprunner.calls() == {"list": 1, "update": 2}
    assert {name: len(v) for name, v in sprunner.remote().items()} == {"shop": 1, "blog": 1}


def test_prune_deletes_only_what_sprunner_created(sprunner: Sprunner, tmp_path: Path) -> None:
    sprunner.emulator.engine.create_collection(
        {"name": "someone-elses", "requests": [{"url": "https://x.example/"}]}
    )
    job = write_job(tmp_path, TWO)
    sprunner.apply(job, "--no-run")
    write_job(tmp_path, TWO.split("  - name: blog")[0])
    result = sprunner("plan", str(job))
    assert "delete with --prune" in result.output and "unmanaged" in result.output
    result, report = sprunner.apply(job, "--no-run")
    assert set(sprunner.remote()) == {"shop", "blog", "someone-elses"}  # no --prune: kept
    result, report = sprunner.apply(job, "--no-run", "--prune")
    assert result.exit_code == 0, result.output
    assert [(c["name"], c["action"]) for c in report["collections"]] == [
        ("shop", "unchanged"),
        ("blog", "deleted"),
    ]
    assert set(sprunner.remote()) == {"shop", "someone-elses"}


POLICY = """
version: 1
collections:
  - name: policy
    requests:
      - url: https://shop.example.com/{{ page }}
        foreach:
          page: "{{ range(4) }}"
    run:
      poll_interval: 0.1s
      {policy}
"""


def policy_job(tmp_path: Path, policy: str, **replace: str) -> Path:
    text = POLICY.replace("{policy}", policy)
    for old, new in replace.items():
        text = text.replace(old, new)
    return write_job(tmp_path, text)


def run_status(report: dict[str, object]) -> tuple[str | None, str | None]:
    (collection,) = report["collections"]  # type: ignore[misc]
    run = collection["run"]
    return (None, None) if run is None else (run["status"], run["reason"])


def test_when_never_and_when_changed(sprunner: Sprunner, tmp_path: Path) -> None:
    result, report = sprunner.apply(policy_job(tmp_path, "when: never"))
    assert result.exit_code == 0 and run_status(report) == ("skipped", "run.when is never")
    assert "run" not in sprunner.calls()
    job = policy_job(tmp_path, "when: changed")
    result, report = sprunner.apply(job)
    # No run ever started with this content: it is pending, so it runs now (SPEC §2).
    assert result.exit_code == 0 and run_status(report) == ("completed", None)
    result, report = sprunner.apply(job)
    assert run_status(report)[0] == "skipped"  # unchanged since the run that started
    job = policy_job(tmp_path, "when: changed", **{"range(4)": "range(5)"})
    result, report = sprunner.apply(job)
    assert result.exit_code == 0 and run_status(report) == ("completed", None)


def test_schedule_runs_only_when_due(sprunner: Sprunner, tmp_path: Path) -> None:
    job = policy_job(tmp_path, 'schedule: "0 0 1 1 *"')
    result, report = sprunner.apply(job)
    assert run_status(report) == ("completed", None)  # never run before: due
    result, report = sprunner.apply(job)
    status, reason = run_status(report)
    assert result.exit_code == 0 and status == "skipped" and "not due" in str(reason)
    assert sprunner.calls()["run"] == 1


def test_overlap_skip_adopts_the_run_in_progress(sprunner: Sprunner, tmp_path: Path) -> None:
    job = policy_job(tmp_path, "overlap: skip")
    sprunner.apply(job, "--no-run")
    sprunner.emulator.engine.run_seconds = 1.0
    (stored,) = sprunner.emulator.engine.collections.values()
    other = sprunner.emulator.engine.start_run(stored.id)
    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    run = report["collections"][0]["run"]
    assert (run["run_id"], run["adopted"], run["status"]) == (other["run_id"], True, "completed")
    assert "run" not in sprunner.calls()  # none started by sprunner


def test_when_never_does_not_wait_for_someone_elses_run(sprunner: Sprunner, tmp_path: Path) -> None:
    job = policy_job(tmp_path, "when: never")
    sprunner.apply(job, "--no-run")
    sprunner.emulator.engine.run_seconds = 30
    (stored,) = sprunner.emulator.engine.collections.values()
    sprunner.emulator.engine.start_run(stored.id)
    sprunner.reset_calls()
    result, report = sprunner.apply(job)
    assert result.exit_code == 0, result.output
    assert run_status(report) == ("skipped", "run.when is never")
    # Not waited for: never polled, nor even listed (a skipped collection is judged by the
    # verdict the state recorded, SPEC §9: none here, as sprunner never ran it).
    assert sprunner.calls() == {"list": 1}
    assert "verdict" not in report["collections"][0]


def test_overlap_allow_starts_another(sprunner: Sprunner, tmp_path: Path) -> None:
    job = policy_job(tmp_path, "overlap: allow")
    sprunner.apply(job, "--no-run")
    (stored,) = sprunner.emulator.engine.collections.values()
    other = sprunner.emulator.engine.start_run(stored.id)
    result, report = sprunner.apply(job)
    run = report["collections"][0]["run"]
    assert result.exit_code == 0 and run["run_id"] != other["run_id"] and not run["adopted"]


def test_timeout_reports_timed_out_and_exit_1(sprunner: Sprunner, tmp_path: Path) -> None:
    sprunner.emulator.engine.run_seconds = 30
    result, report = sprunner.apply(policy_job(tmp_path, "timeout: 0.5s"))
    assert result.exit_code == 1
    status, reason = run_status(report)
    assert status == "timed_out" and "left running" in str(reason)
    assert report["ok"] is False


@pytest.mark.parametrize(("max_failed", "code"), [("0", 1), ("1", 0), ("25%", 0), ("24%", 1)])
def test_max_failed_judges_the_run(
    sprunner: Sprunner, tmp_path: Path, max_failed: str, code: int
) -> None:
    job = policy_job(
        tmp_path,
        f"max_failed: {max_failed}",
        **{"{{ page }}": "{{ 'fail' if page == 0 else page }}"},
    )
    result, report = sprunner.apply(job)
    assert result.exit_code == code, result.output
    assert report["collections"][0]["run"]["failed_requests"] == 1


def test_max_credits_refuses_runs_that_would_pass_it(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, TWO)
    result, report = sprunner.apply(job, "--max-credits", "3")
    assert result.exit_code == 1
    shop, blog = report["collections"]
    assert shop["run"]["status"] == "completed" and shop["run"]["credits"] == 2
    assert blog["run"]["status"] == "skipped" and "refused" in blog["run"]["reason"]
    assert report["summary"]["credits"] == 2


def test_exit_2_for_invalid_files_sends_nothing(sprunner: Sprunner, tmp_path: Path) -> None:
    job = write_job(tmp_path, TWO.replace("requests:", "requestz:", 1))
    result = sprunner("apply", str(job))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert sprunner.calls() == {}


def test_exit_3_for_a_bad_key(sprunner: Sprunner, tmp_path: Path) -> None:
    result = sprunner("apply", str(write_job(tmp_path, TWO)), key="wrong-key")
    assert result.exit_code == 3
    assert "401" in result.output and "wrong-key" not in result.output


def test_exit_3_when_the_quota_is_spent(sprunner: Sprunner, tmp_path: Path) -> None:
    sprunner.emulator.faults.add("quota", route="run")
    result, report = sprunner.apply(write_job(tmp_path, TWO))
    assert result.exit_code == 3, result.output
    assert "quota" in result.output
    # Never retried: at most one start per collection (both may be in flight together).
    assert sprunner.calls()["run"] <= 2
    actions = [c["action"] for c in report["collections"]]
    # Under load the other's create may still be in flight when the quota ends the apply:
    # it is cut short and says so (the next apply checks it again), never "created" falsely.
    assert "created" in actions and set(actions) <= {"created", "error"}, actions
    for collection in report["collections"]:
        if collection["action"] == "error":
            assert collection["error"] == CUT_SHORT


def test_exit_3_when_unreachable(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from click.testing import CliRunner

    from sprunner.cli.app import cli

    result = CliRunner().invoke(
        cli,
        ["--api-url", f"http://127.0.0.1:{port}", "apply", str(write_job(tmp_path, TWO))],
        env={"SCRAPINGPROS_API_KEY": "k"},
        catch_exceptions=False,
    )
    assert result.exit_code == 3, result.output


def test_exit_4_when_another_apply_holds_the_lock(sprunner: Sprunner, tmp_path: Path) -> None:
    from sprunner.state import locked

    with locked(sprunner.state_dir):
        result = sprunner("apply", str(write_job(tmp_path, TWO)))
    assert result.exit_code == 4
    assert "another sprunner apply holds the lock" in result.output
    assert sprunner.calls() == {}


def test_missing_key_is_a_usage_error(sprunner: Sprunner, tmp_path: Path) -> None:
    result = sprunner("apply", str(write_job(tmp_path, TWO)), key="")
    assert result.exit_code == 2 and "no API key" in result.output
