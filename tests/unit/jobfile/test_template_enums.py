"""Enum fields may be templates too: the schema lets them through, their rendering is checked."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sprunner.errors import JobFileError
from sprunner.jobfile.expand import RENDERED_ENUMS
from sprunner.jobfile.load import load
from sprunner.jobfile.schema import schema_text
from sprunner.settings import Selection

JOB = """
version: 1
vars:
  fmt: markdown
collections:
  - name: a
    requests:
      - url: https://a.example/{{ size }}
        format: "{{ fmt }}"
        window_size: "{{ size }}"
        foreach:
          size: [desktop, SIZE]
"""


def write(tmp_path: Path, size: str) -> Path:
    path = tmp_path / "a.yaml"
    path.write_text(textwrap.dedent(JOB).lstrip().replace("SIZE", size))
    return path


def test_templated_enum_fields_render_to_allowed_values(tmp_path: Path) -> None:
    (collection,) = load(Selection(paths=(write(tmp_path, "mobile"),))).collections
    assert [(r["format"], r["window_size"]) for r in collection.requests] == [
        ("markdown", "desktop"),
        ("markdown", "mobile"),
    ]


def test_a_templated_enum_that_renders_wrong_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "tablet")
    with pytest.raises(JobFileError) as caught:
        load(Selection(paths=(path,)))
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:9:22: collections[0].requests[0].window_size: "
        'expected desktop, mobile or any after rendering, got "tablet"'
    ]


def test_a_plain_wrong_enum_is_still_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(
        "version: 1\ncollections:\n  - name: b\n    requests:\n"
        "      - url: https://b.example/\n        format: pdf\n"
    )
    with pytest.raises(JobFileError, match='expected html or markdown, got "pdf"'):
        load(Selection(paths=(path,)))


def test_rendered_enums_are_the_schemas() -> None:
    schema = json.loads(schema_text("jobfile"))
    request = schema["properties"]["collections"]["items"]["properties"]["requests"]["items"]
    for field, allowed in RENDERED_ENUMS.items():
        assert tuple(request["properties"][field]["enum"]) == allowed
