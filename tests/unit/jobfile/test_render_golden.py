"""Golden output of `render` and `validate`: order, merging, functions, env() as ***.

To refresh after an intended change: run from `golden/`
`SPRUNNER_GOLDEN_TOKEN=tok-12345678 sprunner render jobs [--json] > render.txt|render.json`
and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sprunner.cli.app import cli

GOLDEN = Path(__file__).parent / "golden"
TOKEN = "tok-12345678"  # 8 characters or more: no warning (SPEC §10)
DUPLICATE_WARNING = (
    "warning: jobs/a-shop.yaml:34:9: collections[1].requests[1]: 1 request of collection "
    "'shop-skus' is identical to earlier ones after expansion and sent once"
)


@pytest.fixture(autouse=True)
def _in_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    monkeypatch.setenv("SPRUNNER_GOLDEN_TOKEN", TOKEN)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_render_human() -> None:
    result = invoke("render", "jobs")
    assert result.stdout == (GOLDEN / "render.txt").read_text("utf-8")
    assert result.stderr.splitlines() == [DUPLICATE_WARNING]
    assert TOKEN not in result.output


def test_render_json() -> None:
    result = invoke("render", "jobs", "--json")
    assert json.loads(result.stdout) == json.loads((GOLDEN / "render.json").read_text("utf-8"))
    assert result.stdout == (GOLDEN / "render.json").read_text("utf-8")
    assert TOKEN not in result.output


def test_render_selects() -> None:
    result = invoke("render", "jobs", "--json", "--select", "tag:secret", "-s", "plain")
    names = [c["name"] for c in json.loads(result.stdout)["collections"]]
    assert names == ["api-with-token", "plain"]


def test_validate_summary() -> None:
    result = invoke("validate", "jobs")
    assert result.stdout == "ok: 2 files, 4 collections, 18 requests\n"
    assert result.stderr.splitlines() == [DUPLICATE_WARNING]


def test_select_matching_nothing_is_exit_2() -> None:
    result = CliRunner().invoke(cli, ["render", "jobs", "-s", "nope"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "'nope' matches no collection" in result.stderr
    assert "shop-categories, shop-skus, api-with-token, plain" in result.stderr


def test_schema_commands() -> None:
    jobfile = json.loads(invoke("schema").stdout)
    assert jobfile["title"] == "sprunner job file"
    report = invoke("schema", "--report").stdout
    assert json.loads(report) != jobfile
