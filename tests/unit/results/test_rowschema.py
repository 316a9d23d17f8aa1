"""The declared row schema: one set of columns and types, the API's fields mapped once."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sprunner.api.models import Job
from sprunner.results.rowschema import (
    ALWAYS,
    ARROW_TYPES,
    COLUMNS,
    NAMES,
    arrow_schema,
    conformed,
    job_row,
    json_schema,
)
from sprunner.util.schemafiles import schema_text

ROOT = Path(__file__).parents[3]
STARTED = "2026-11-28T12:00:00.000000Z"


def _job(**changes: Any) -> Job:
    values: dict[str, Any] = {
        "job_id": "j1",
        "run_id": "r1",
        "collection_id": "c1",
        "status": "completed",
        "url": "https://shop.test/1",
        "status_code": 200,
        "completed_at": "2026-11-28T12:00:01.5Z",
    }
    return Job(**{**values, **changes})


def _row(job: Job | None = None, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return job_row(job or _job(), body, run_id="r1", run_started_at=STARTED, **kw)


def test_the_packaged_schema_is_the_declared_one() -> None:
    assert json.loads(schema_text("results-row")) == json_schema()
    jsonschema.Draft7Validator.check_schema(json_schema())
    assert [f.name for f in arrow_schema()] == list(NAMES)


def test_the_readme_documents_every_column() -> None:
    names = {"string": "string", "timestamp": "timestamp (UTC)", "int": "integer"}
    names |= {"float": "float", "json": "JSON text"}
    lines = ["| column | type (Parquet) | filled | meaning |", "| --- | --- | --- | --- |"]
    for c in COLUMNS:
        filled = "always" if c.name in ALWAYS else "by default"
        filled = "when `fields` names it" if c.name == "screenshot" else filled
        kind = f"{names[c.kind]} (`{ARROW_TYPES[c.kind]}`)"
        lines.append(f"| `{c.name}` | {kind} | {filled} | {c.description} |")
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- results-row BEGIN -->\n(.*?)\n<!-- results-row END -->", readme, re.S)
    assert found and found.group(1) == "\n".join(lines)


def test_the_api_fields_are_mapped_to_one_column_each() -> None:
    body = {
        "url": "https://echoed.test/",
        "html": "<p>",
        "statusCode": 404,
        "executionTime": 1.25,
        "extracted_data": {"price": 3},
        "content_type": "text/html",
        "screenshot": "b64",
    }
    row = _row(_job(status_code=None), body)
    assert tuple(row) == NAMES
    assert row["status_code"] == 404 and row["execution_time_ms"] == 1250.0
    assert row["url"] == "https://shop.test/1", "the request's URL, never the echo"
    assert row["extracted_data"] == '{"price":3}' and row["extra"] == '{"content_type":"text/html"}'
    assert row["screenshot"] is None, "not chosen by default"
    assert row["completed_at"] == "2026-11-28T12:00:01.500000Z"
    assert (row["run_id"], row["run_started_at"], row["attempts"]) == ("r1", STARTED, 1)
    jsonschema.validate(row, json_schema())


def test_a_deselected_column_is_null_not_missing() -> None:
    row = _row(body={"html": "<p>", "markdown": "#"}, fields=("markdown",))
    assert tuple(row) == NAMES
    assert row["html"] is None and row["markdown"] == "#" and row["status_code"] == 200


@pytest.mark.parametrize(
    ("changes", "column", "expected"),
    [
        ({"status_code": True}, "status_code", None),
        ({"status_code": 2**70}, "status_code", None),
        ({"status_code": "503"}, "status_code", 503),
        ({"status_code": "--5"}, "status_code", None),
        ({"completed_at": "not-a-date"}, "completed_at", None),
        ({"completed_at": "0001-01-01T00:00:00Z"}, "completed_at", "0001-01-01T00:00:00.000000Z"),
        (
            {"completed_at": "2026-11-28T12:00:00+14:00"},
            "completed_at",
            "2026-11-27T22:00:00.000000Z",
        ),
        ({"execution_time_ms": float("nan")}, "execution_time_ms", None),
    ],
)
def test_hostile_values_become_nulls_of_the_column_type(
    changes: dict[str, Any], column: str, expected: Any
) -> None:
    job = _job()
    object.__setattr__(job, *next(iter(changes.items())))  # past the model, as an echo might
    row = _row(job)
    assert row[column] == expected
    jsonschema.validate(row, json_schema())


def test_a_row_staged_before_the_schema_is_mapped_like_a_body() -> None:
    old = {
        "job_id": "j1",
        "url": "https://shop.test/1",
        "custom_id": None,
        "status": "completed",
        "status_code": 200,
        "attempts": 2,
        "result_unavailable": None,
        "html": "<p>",
        "statusCode": 200,
        "executionTime": 0.5,
        "extracted_data": {"a": 1},
        "content_type": "text/html",
    }
    row = conformed(old, run_id="r0", run_started_at=STARTED)
    assert tuple(row) == NAMES
    assert (row["run_id"], row["attempts"], row["execution_time_ms"]) == ("r0", 2, 500.0)
    assert row["extracted_data"] == '{"a":1}' and row["extra"] == '{"content_type":"text/html"}'
    assert conformed(row) == row, "a row of the schema comes out unchanged"
