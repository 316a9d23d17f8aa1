"""The `results:` block (SPEC section 7) and `run.retry:` (SPEC section 8) in job files.

Parsed into frozen fields, validated with file:line:col, documented in the schema; not sent
to the API, so they never change a collection's content fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sprunner.errors import JobFileError
from sprunner.jobfile.load import load
from sprunner.jobfile.model import (
    DEFAULT_RESULT_FIELDS,
    RESULT_FIELDS,
    DesiredCollection,
    ResultsSpec,
    RetryPolicy,
)
from sprunner.jobfile.schema import schema_text
from sprunner.settings import Selection

HEAD = "version: 1\ncollections:\n  - name: c\n    requests:\n      - url: https://a.example.com/\n"


def load_text(path: Path, extra: str) -> DesiredCollection:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEAD + extra)
    (collection,) = load(Selection(paths=(path,))).collections
    return collection


def problems(path: Path, extra: str) -> list[str]:
    path.write_text(HEAD + extra)
    with pytest.raises(JobFileError) as raised:
        load(Selection(paths=(path,)))
    return [str(p) for p in raised.value.problems]


def test_defaults_without_the_blocks(tmp_path: Path) -> None:
    collection = load_text(tmp_path / "f.yaml", "")
    assert collection.results is None
    assert collection.run.retry == RetryPolicy(0, frozenset({"failed", "timeout"}), 0.0)


def test_results_to_is_resolved_against_the_job_file_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    collection = load_text(Path("../jobs/f.yaml"), "    results:\n      to: out/\n")
    assert collection.results == ResultsSpec(
        to=str(tmp_path / "jobs" / "out"), format="jsonl.gz", fields=DEFAULT_RESULT_FIELDS
    )
    assert not collection.results.is_url
    assert "screenshot" not in collection.results.fields
    assert set(DEFAULT_RESULT_FIELDS) == set(RESULT_FIELDS) - {"screenshot"}


def test_results_url_format_and_fields(tmp_path: Path) -> None:
    extra = (
        "    results:\n      to: s3://bucket/prefix\n      format: parquet\n"
        "      fields: [url, status, html, screenshot]\n      x-note: kept out\n"
    )
    results = load_text(tmp_path / "f.yaml", extra).results
    assert results == ResultsSpec(
        "s3://bucket/prefix", "parquet", ("url", "status", "html", "screenshot")
    )
    assert results.is_url


def test_retry_is_parsed(tmp_path: Path) -> None:
    extra = "    run:\n      retry: {attempts: 2, on: [timeout], delay: 1m}\n"
    retry = load_text(tmp_path / "f.yaml", extra).run.retry
    assert retry == RetryPolicy(attempts=2, on=frozenset({"timeout"}), delay=60.0)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "    run:\n      retry: {attempts: 11}\n",
            "7:25: collections[0].run.retry.attempts: must be at most 10, got 11",
        ),
        (
            "    run:\n      retry: {attempts: -1}\n",
            "7:25: collections[0].run.retry.attempts: must be at least 0, got -1",
        ),
        (
            "    run:\n      retry: {on: []}\n",
            "7:19: collections[0].run.retry.on: must not be empty",
        ),
        (
            "    run:\n      retry: {on: [failed, failed]}\n",
            "7:19: collections[0].run.retry.on: has duplicate items",
        ),
        (
            "    run:\n      retry: {on: [fail]}\n",
            '7:20: collections[0].run.retry.on[0]: expected failed or timeout, got "fail"',
        ),
        (
            "    run:\n      retry: {delay: soon}\n",
            "7:22: collections[0].run.retry.delay: expected a duration such as 30s or 1m",
        ),
        (
            "    run:\n      retry: {attemps: 2}\n",
            "7:15: collections[0].run.retry.attemps: unknown key (did you mean 'attempts'?)",
        ),
        (
            "    results:\n      format: jsonl\n",
            "7:7: collections[0].results: missing required key 'to'",
        ),
        (
            "    results:\n      to: out\n      format: csv\n",
            '8:15: collections[0].results.format: expected jsonl.gz, jsonl or parquet, got "csv"',
        ),
        (
            "    results:\n      to: out\n      fields: [url, body]\n",
            "8:21: collections[0].results.fields[1]: expected url, custom_id",
        ),
        (
            "    results:\n      to: out\n      fields: []\n",
            "8:15: collections[0].results.fields: must not be empty",
        ),
        ("    results:\n      to: ''\n", "7:11: collections[0].results.to: must not be empty"),
        (
            "    results:\n      to: out\n      dir: x\n",
            "8:7: collections[0].results.dir: unknown key",
        ),
    ],
)
def test_bad_blocks_are_located(tmp_path: Path, extra: str, expected: str) -> None:
    path = tmp_path / "f.yaml"
    (problem,) = problems(path, extra)
    assert problem.startswith(f"{path}:{expected}"), problem


def test_results_and_retry_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    plain = load_text(tmp_path / "a" / "f.yaml", "")
    extra = (
        "    results: {to: out/, format: jsonl}\n"
        "    run:\n      retry: {attempts: 3, on: [failed], delay: 5s}\n"
    )
    other = load_text(tmp_path / "b" / "f.yaml", extra)
    assert other.results is not None and other.run.retry.attempts == 3
    assert plain.fingerprint == other.fingerprint


def test_the_schema_documents_the_new_blocks() -> None:
    import jsonschema

    schema = json.loads(schema_text("jobfile"))
    jsonschema.Draft7Validator.check_schema(schema)
    collection = schema["properties"]["collections"]["items"]["properties"]
    blocks = [collection["results"], collection["run"]["properties"]["retry"]]
    for block in blocks:
        assert block["additionalProperties"] is False and block["examples"]
        for node in block["properties"].values():
            assert node["title"] and node["description"] and node["examples"], node
    fields = collection["results"]["properties"]["fields"]
    assert tuple(fields["items"]["enum"]) == RESULT_FIELDS
    assert tuple(fields["default"]) == DEFAULT_RESULT_FIELDS
